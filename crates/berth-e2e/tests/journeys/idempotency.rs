//! Idempotency keys: a retried create through the other replica answers the first result and
//! creates nothing more; the same key with another body is refused.

use berth_e2e::{Deployment, fresh_guid, registry_path};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
#[ignore = "needs a deployment: run cargo xtask e2e"]
async fn a_create_retried_on_the_other_replica_is_replayed_once() -> anyhow::Result<()> {
    let deployment = Deployment::from_env()?;
    let admin = deployment.admin()?;
    let (first, second) = (deployment.first(), deployment.second());
    let run = fresh_guid();
    let key = format!("e2e-{run}");
    let body = json!({"location": format!("keyed.e2e-{run}.example.com"), "username": "u", "password": "p",
                      "metadata": {"labels": {"e2e-run": run}}});
    let headers = [("Idempotency-Key", key.as_str())];
    let path = "/v3/registry_credentials";

    let original = first
        .call(Method::POST, path, Some(&admin), Some(&body), &headers)
        .await?
        .expect(201)?;
    let retry = second
        .call(Method::POST, path, Some(&admin), Some(&body), &headers)
        .await?;
    anyhow::ensure!(
        retry.header("idempotent-replayed") == Some("true"),
        "{:?}",
        retry.headers
    );
    let replayed = retry.expect(201)?;
    anyhow::ensure!(replayed == original, "{replayed} != {original}");
    let listed = second
        .get(&admin, &format!("{path}?label_selector=e2e-run%3D{run}"))
        .await?
        .expect(200)?;
    anyhow::ensure!(listed["pagination"]["total_results"] == 1, "{listed}");

    let other = json!({"location": format!("other.e2e-{run}.example.com"), "username": "u", "password": "p"});
    second
        .call(Method::POST, path, Some(&admin), Some(&other), &headers)
        .await?
        .expect(422)?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs a deployment: run cargo xtask e2e"]
async fn a_robot_create_retried_on_the_other_replica_creates_one_robot() -> anyhow::Result<()> {
    let deployment = Deployment::from_env()?;
    let admin = deployment.admin()?;
    let (first, second, harbor) = (deployment.first(), deployment.second(), deployment.harbor());
    let organization = first.organization(&admin, "e2e-keyed-robot").await?;
    first
        .post_empty(&admin, &registry_path(&organization))
        .await?
        .expect(201)?;
    let path = format!("{}/credentials", registry_path(&organization));
    let key = fresh_guid();
    let headers = [("Idempotency-Key", key.as_str())];
    let body = json!({"name": "deploy", "access": "pull"});
    let original = first
        .call(Method::POST, &path, Some(&admin), Some(&body), &headers)
        .await?
        .expect(201)?;
    let retry = second
        .call(Method::POST, &path, Some(&admin), Some(&body), &headers)
        .await?;
    anyhow::ensure!(
        retry.header("idempotent-replayed") == Some("true"),
        "{:?}",
        retry.headers
    );
    anyhow::ensure!(retry.expect(201)? == original);
    let deploy_robots = harbor
        .robots_of(&format!("org-{organization}"))
        .await?
        .into_iter()
        .filter(|robot| {
            robot["name"]
                .as_str()
                .is_some_and(|name| name.ends_with("+deploy"))
        })
        .count();
    anyhow::ensure!(
        deploy_robots == 1,
        "{deploy_robots} deploy robots in Harbor"
    );
    let credentials = &original["credentials"];
    anyhow::ensure!(
        harbor
            .registry_login_works(
                credentials["username"].as_str().unwrap_or_default(),
                credentials["password"].as_str().unwrap_or_default(),
            )
            .await?
    );
    Ok(())
}
