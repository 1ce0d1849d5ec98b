//! Platform roles from the token: an organization manager sees and writes its organization's
//! credentials and registry only (another organization is not there for it); a space developer
//! writes its space's credentials and reads its organization's.

use berth_e2e::{Deployment, fresh_guid, registry_path};
use serde_json::{Value, json};

fn guids(list: &Value) -> Vec<String> {
    list["resources"]
        .as_array()
        .map(|resources| {
            resources
                .iter()
                .filter_map(|resource| resource["guid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs a deployment: run cargo xtask e2e"]
async fn roles_in_the_token_scope_what_a_caller_reads_and_writes() -> anyhow::Result<()> {
    let deployment = Deployment::from_env()?;
    let admin = deployment.admin()?;
    let (first, second) = (deployment.first(), deployment.second());
    let ours = first.organization(&admin, "e2e-ours").await?;
    let theirs = first.organization(&admin, "e2e-theirs").await?;
    let space = first.space(&admin, &ours, "web").await?;
    let run = fresh_guid();
    let manager = deployment.mint(
        "e2e-manager",
        &[],
        &[format!("organization_manager:{ours}")],
    )?;
    let developer = deployment.mint("e2e-developer", &[], &[format!("space_developer:{space}")])?;

    // The manager writes in its organization and its spaces, not in another.
    let organization_credential = second
        .post(
            &manager,
            "/v3/registry_credentials",
            &json!({"location": format!("org.e2e-{run}.example.com"), "username": "u", "password": "p",
                    "relationships": {"organization": {"data": {"guid": ours}}}}),
        )
        .await?
        .expect(201)?;
    let refused = second
        .post(
            &manager,
            "/v3/registry_credentials",
            &json!({"location": format!("theirs.e2e-{run}.example.com"), "username": "u", "password": "p",
                    "relationships": {"organization": {"data": {"guid": theirs}}}}),
        )
        .await?;
    let refused = refused.expect(422)?;
    anyhow::ensure!(
        refused["errors"][0]["detail"]
            == "Invalid organization. Ensure that the organization exists and you have access to it.",
        "{refused}"
    );
    let space_credential = first
        .post(
            &developer,
            "/v3/registry_credentials",
            &json!({"location": format!("space.e2e-{run}.example.com"), "username": "u", "password": "p",
                    "relationships": {"space": {"data": {"guid": space}}}}),
        )
        .await?
        .expect(201)?;
    // A developer may not write the organization's credentials, only read them.
    first
        .patch(
            &developer,
            &format!(
                "/v3/registry_credentials/{}",
                organization_credential["guid"].as_str().unwrap_or_default()
            ),
            &json!({"username": "x"}),
        )
        .await?
        .expect(403)?;

    // Each sees its own, through the other replica.
    let seen = guids(
        &first
            .get(
                &manager,
                &format!("/v3/registry_credentials?organization_guids={ours},{theirs}"),
            )
            .await?
            .expect(200)?,
    );
    for credential in [&organization_credential, &space_credential] {
        let guid = credential["guid"].as_str().unwrap_or_default().to_owned();
        anyhow::ensure!(
            seen.contains(&guid),
            "the manager does not see {guid}: {seen:?}"
        );
    }
    let organizations = guids(
        &second
            .get(&developer, "/v3/organizations")
            .await?
            .expect(200)?,
    );
    anyhow::ensure!(organizations == [ours.clone()], "{organizations:?}");

    // Registries: the manager enables its own; another organization's is not its to see.
    first
        .post_empty(&manager, &registry_path(&ours))
        .await?
        .expect(201)?;
    let other = second
        .post_empty(&manager, &registry_path(&theirs))
        .await?
        .expect(404)?;
    anyhow::ensure!(
        other["error"]["code"] == "organization_not_found",
        "{other}"
    );
    second
        .get(&developer, &registry_path(&ours))
        .await?
        .expect(200)?;
    second
        .delete(&developer, &registry_path(&ours))
        .await?
        .expect(403)?;
    Ok(())
}
