//! Robot credentials of an organization registry: create, rotate (the old secret stops working
//! at Harbor's token service, the new one works), delete.

use berth_e2e::{Deployment, registry_path};
use serde_json::json;

#[tokio::test]
#[ignore = "needs a deployment: run cargo xtask e2e"]
async fn a_rotated_robot_secret_replaces_the_old_one_at_harbor() -> anyhow::Result<()> {
    let deployment = Deployment::from_env()?;
    let admin = deployment.admin()?;
    let (first, second, harbor) = (deployment.first(), deployment.second(), deployment.harbor());
    let organization = first.organization(&admin, "e2e-robots").await?;
    let path = registry_path(&organization);
    first.post_empty(&admin, &path).await?.expect(201)?;
    let credentials = format!("{path}/credentials");

    let created = first
        .post(
            &admin,
            &credentials,
            &json!({"name": "ci-pull", "access": "pull", "expires_in_days": 30}),
        )
        .await?
        .expect(201)?;
    anyhow::ensure!(created["credential"]["access"] == "pull", "{created}");
    anyhow::ensure!(created["credential"]["expires_at"].is_string(), "{created}");
    let id = created["credential"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let username = created["credentials"]["username"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let old = created["credentials"]["password"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(
        harbor.registry_login_works(&username, &old).await?,
        "a new robot cannot log in"
    );

    let listed = second.get(&admin, &credentials).await?.expect(200)?;
    let names: Vec<&str> = listed["resources"]
        .as_array()
        .map(|robots| {
            robots
                .iter()
                .filter_map(|robot| robot["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    anyhow::ensure!(names.contains(&"ci-pull"), "{listed}");
    let taken = second
        .post(
            &admin,
            &credentials,
            &json!({"name": "ci-pull", "access": "pull"}),
        )
        .await?
        .expect(409)?;
    anyhow::ensure!(taken["error"]["code"] == "robot_name_taken", "{taken}");

    let rotated = second
        .post(&admin, &format!("{credentials}/{id}/rotate"), &json!({}))
        .await?
        .expect(200)?;
    let new = rotated["credentials"]["password"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(new != old, "rotation answered the same secret");
    anyhow::ensure!(
        !harbor.registry_login_works(&username, &old).await?,
        "the old secret still works after rotation"
    );
    anyhow::ensure!(
        harbor.registry_login_works(&username, &new).await?,
        "the new secret does not work"
    );

    first
        .delete(&admin, &format!("{credentials}/{id}"))
        .await?
        .expect(204)?;
    anyhow::ensure!(
        !harbor.registry_login_works(&username, &new).await?,
        "a deleted robot still logs in"
    );
    second
        .delete(&admin, &format!("{credentials}/{id}"))
        .await?
        .expect(404)?;
    Ok(())
}
