//! The directory (organizations, spaces, apps): created on one replica, listed and filtered on
//! the other, refused while in use, then deleted leaf first.

use berth_e2e::Deployment;
use serde_json::json;

#[tokio::test]
#[ignore = "needs a deployment: run cargo xtask e2e"]
async fn the_directory_is_shared_by_both_replicas_and_deleted_leaf_first() -> anyhow::Result<()> {
    let deployment = Deployment::from_env()?;
    let admin = deployment.admin()?;
    let (first, second) = (deployment.first(), deployment.second());
    let organization = first.organization(&admin, "e2e-directory").await?;
    let space = first.space(&admin, &organization, "web").await?;
    let app = first.app(&admin, &space, "frontend").await?;

    let shown = second
        .get(&admin, &format!("/v3/organizations/{organization}"))
        .await?
        .expect(200)?;
    anyhow::ensure!(shown["name"] == "e2e-directory", "{shown}");
    let spaces = second
        .get(
            &admin,
            &format!("/v3/spaces?organization_guids={organization}"),
        )
        .await?
        .expect(200)?;
    anyhow::ensure!(spaces["pagination"]["total_results"] == 1, "{spaces}");
    anyhow::ensure!(spaces["resources"][0]["guid"] == space.as_str(), "{spaces}");
    let apps = second
        .get(&admin, &format!("/v3/apps?space_guids={space}"))
        .await?
        .expect(200)?;
    anyhow::ensure!(apps["resources"][0]["guid"] == app.as_str(), "{apps}");

    // Renamed on the second replica, read on the first.
    second
        .put(
            &admin,
            &format!("/v3/apps/{app}"),
            &json!({"name": "renamed", "relationships": {"space": {"data": {"guid": space}}}}),
        )
        .await?
        .expect(200)?;
    let renamed = first
        .get(&admin, &format!("/v3/apps/{app}"))
        .await?
        .expect(200)?;
    anyhow::ensure!(renamed["name"] == "renamed", "{renamed}");

    // An app-level credential holds the whole chain in place.
    let credential = first
        .post(
            &admin,
            "/v3/registry_credentials",
            &json!({"location": format!("apps.e2e-{app}.example.com"), "username": "u", "password": "p",
                    "relationships": {"app": {"data": {"guid": app}}}}),
        )
        .await?
        .expect(201)?;
    anyhow::ensure!(credential["scope"] == "app", "{credential}");
    anyhow::ensure!(
        credential["relationships"]["organization"]["data"]["guid"] == organization.as_str(),
        "{credential}"
    );
    let refused = second
        .delete(&admin, &format!("/v3/organizations/{organization}"))
        .await?
        .expect(422)?;
    anyhow::ensure!(
        refused["errors"][0]["title"] == "CF-UnprocessableEntity",
        "{refused}"
    );

    let guid = credential["guid"].as_str().unwrap_or_default();
    second
        .delete(&admin, &format!("/v3/registry_credentials/{guid}"))
        .await?
        .expect(204)?;
    for path in [
        format!("/v3/apps/{app}"),
        format!("/v3/spaces/{space}"),
        format!("/v3/organizations/{organization}"),
    ] {
        first.delete(&admin, &path).await?.expect(204)?;
        second.get(&admin, &path).await?.expect(404)?;
    }
    Ok(())
}
