//! Organization registries (the second seed): enable, show, resize, disable, with Harbor checked
//! through its own API after each step.

use berth_e2e::{Deployment, registry_path};
use serde_json::json;

const GIB: i64 = 1024 * 1024 * 1024;

#[tokio::test]
#[ignore = "needs a deployment: run cargo xtask e2e"]
async fn an_enabled_registry_is_a_harbor_project_with_a_working_robot() -> anyhow::Result<()> {
    let deployment = Deployment::from_env()?;
    let admin = deployment.admin()?;
    let (first, second, harbor) = (deployment.first(), deployment.second(), deployment.harbor());
    let organization = first.organization(&admin, "e2e-registry").await?;
    let path = registry_path(&organization);
    let project = format!("org-{organization}");
    anyhow::ensure!(
        harbor.project(&project).await?.is_none(),
        "{project} exists before enabling"
    );

    let enabled = first.post_empty(&admin, &path).await?.expect(201)?;
    let registry = &enabled["registry"];
    anyhow::ensure!(registry["org_id"] == organization.as_str(), "{enabled}");
    anyhow::ensure!(registry["harbor_project"] == project.as_str(), "{enabled}");
    anyhow::ensure!(registry["enabled"] == true, "{enabled}");
    let quota_gb = registry["quota_gb"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("no quota_gb: {enabled}"))?;
    let username = enabled["credentials"]["username"]
        .as_str()
        .unwrap_or_default();
    let password = enabled["credentials"]["password"]
        .as_str()
        .unwrap_or_default();
    anyhow::ensure!(
        username == format!("robot${project}+berth-default"),
        "{enabled}"
    );

    // Harbor has the project, its quota and the robot; the robot logs in to the registry.
    anyhow::ensure!(
        harbor.project(&project).await?.is_some(),
        "no Harbor project {project}"
    );
    anyhow::ensure!(harbor.storage_quota(&project).await? == quota_gb * GIB);
    anyhow::ensure!(
        harbor.registry_login_works(username, password).await?,
        "the default robot's secret does not work at Harbor"
    );

    // The second replica shows what the first enabled, and refuses a second enable.
    let shown = second.get(&admin, &path).await?.expect(200)?;
    anyhow::ensure!(
        shown["id"] == registry["id"] && shown["enabled"] == true,
        "{shown}"
    );
    anyhow::ensure!(
        shown.get("credentials").is_none(),
        "a secret in GET: {shown}"
    );
    let again = second.post_empty(&admin, &path).await?.expect(409)?;
    anyhow::ensure!(
        again["error"]["code"] == "registry_already_enabled",
        "{again}"
    );

    let resized = second
        .patch(&admin, &path, &json!({"quota_gb": quota_gb + 5}))
        .await?
        .expect(200)?;
    anyhow::ensure!(resized["quota_gb"] == quota_gb + 5, "{resized}");
    anyhow::ensure!(harbor.storage_quota(&project).await? == (quota_gb + 5) * GIB);
    let shown = first.get(&admin, &path).await?.expect(200)?;
    anyhow::ensure!(shown["quota_gb"] == quota_gb + 5, "{shown}");
    let invalid = first
        .patch(&admin, &path, &json!({"quota_gb": 0}))
        .await?
        .expect(422)?;
    anyhow::ensure!(invalid["error"]["code"] == "validation_failed", "{invalid}");

    // Disabling deletes the robots and keeps the project (and its images).
    first.delete(&admin, &path).await?.expect(204)?;
    anyhow::ensure!(
        !harbor.registry_login_works(username, password).await?,
        "the default robot still logs in after disabling"
    );
    anyhow::ensure!(harbor.robots_of(&project).await?.is_empty());
    anyhow::ensure!(
        harbor.project(&project).await?.is_some(),
        "the project went with the registry"
    );
    let shown = second.get(&admin, &path).await?.expect(200)?;
    anyhow::ensure!(shown["enabled"] == false, "{shown}");
    Ok(())
}
