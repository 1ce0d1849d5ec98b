//! Audit events: a credential's life (create, update, a password revealed by resolve, delete)
//! is recorded on the replica that made each change and read on the other, with no secret in
//! any event, visible to its organization's manager and to nobody of another organization.

use std::time::{Duration, Instant};

use berth_e2e::Deployment;
use serde_json::{Value, json};

const RESOLVE: &str = "/v3/registry_credentials/actions/resolve";

/// The types of the events of `target`, oldest first, as `reader` lists them on the second
/// replica once at least `count` are there (access events are written in batches).
async fn event_types(
    deployment: &Deployment,
    reader: &str,
    target: &str,
    count: usize,
) -> anyhow::Result<(Vec<String>, Value)> {
    let path = format!("/v3/audit_events?target_guids={target}&order_by=created_at");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = deployment.second().get(reader, &path).await?.expect(200)?;
        let types: Vec<String> = listed["resources"]
            .as_array()
            .map(|events| {
                events
                    .iter()
                    .filter_map(|event| event["type"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if types.len() >= count || Instant::now() > deadline {
            return Ok((types, listed));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
#[ignore = "needs a deployment: run cargo xtask e2e"]
async fn a_credentials_life_is_audited_across_replicas_without_its_secrets() -> anyhow::Result<()> {
    let deployment = Deployment::from_env()?;
    let admin = deployment.admin()?;
    let (first, second) = (deployment.first(), deployment.second());
    let organization = first.organization(&admin, "e2e-audit").await?;
    let space = first.space(&admin, &organization, "web").await?;
    let app = first.app(&admin, &space, "frontend").await?;
    let location = format!("audit.e2e-{app}.example.com/team");
    let (old_secret, new_secret) = (format!("old-{app}"), format!("new-{app}"));
    let created = first
        .post(
            &admin,
            "/v3/registry_credentials",
            &json!({"location": location, "username": "auditor", "password": old_secret,
                    "relationships": {"organization": {"data": {"guid": organization}}}}),
        )
        .await?
        .expect(201)?;
    let guid = created["guid"].as_str().unwrap_or_default().to_owned();
    second
        .patch(
            &admin,
            &format!("/v3/registry_credentials/{guid}"),
            &json!({"password": new_secret}),
        )
        .await?
        .expect(200)?;
    let deployer = deployment.mint("e2e-audit-deployer", &["berth.pull_secrets"], &[])?;
    let resolved = first
        .post(
            &deployer,
            RESOLVE,
            &json!({"images": [format!("{location}/api:1")],
                    "relationships": {"app": {"data": {"guid": app}}}}),
        )
        .await?
        .expect(200)?;
    anyhow::ensure!(
        resolved.to_string().contains(&new_secret),
        "resolve did not reveal the new password: {resolved}"
    );
    first
        .delete(&admin, &format!("/v3/registry_credentials/{guid}"))
        .await?
        .expect(204)?;

    let (types, listed) = event_types(&deployment, &admin, &guid, 4).await?;
    anyhow::ensure!(
        types
            == [
                "audit.registry_credential.create",
                "audit.registry_credential.update",
                "audit.registry_credential.access",
                "audit.registry_credential.delete",
            ],
        "{listed}"
    );
    let text = listed.to_string();
    for secret in [&old_secret, &new_secret] {
        anyhow::ensure!(
            !text.contains(secret.as_str()),
            "a secret in an event: {text}"
        );
    }
    anyhow::ensure!(text.contains("[PRIVATE DATA HIDDEN]"), "{text}");
    let event = listed["resources"][0]["guid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // The organization's manager sees its events; a manager of another organization does not.
    let manager = deployment.mint(
        "e2e-audit-manager",
        &[],
        &[format!("organization_manager:{organization}")],
    )?;
    let (seen, _) = event_types(&deployment, &manager, &guid, 4).await?;
    anyhow::ensure!(seen == types, "the manager saw {seen:?}");
    let other = first.organization(&admin, "e2e-audit-other").await?;
    let stranger = deployment.mint(
        "e2e-audit-stranger",
        &[],
        &[format!("organization_manager:{other}")],
    )?;
    first
        .get(&stranger, &format!("/v3/audit_events/{event}"))
        .await?
        .expect(404)?;
    let (hidden, _) = event_types(&deployment, &stranger, &guid, 0).await?;
    anyhow::ensure!(hidden.is_empty(), "a stranger saw {hidden:?}");
    Ok(())
}
