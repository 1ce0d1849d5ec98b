//! Pull-secret resolution: an app's images resolve to a `.dockerconfigjson` whose logins work,
//! its organization registry's pull robot among them.

use berth_e2e::{Deployment, docker_login, registry_path};
use serde_json::{Value, json};

const RESOLVE: &str = "/v3/registry_credentials/actions/resolve";

/// The `docker_config` entry the resolution of `image` points at.
fn entry<'a>(answer: &'a Value, image: &str) -> anyhow::Result<&'a Value> {
    let resolution = answer["resolutions"]
        .as_array()
        .and_then(|all| all.iter().find(|resolution| resolution["image"] == image))
        .ok_or_else(|| anyhow::anyhow!("no resolution of {image}: {answer}"))?;
    let key = resolution["key"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("{image} resolved to no credential: {answer}"))?;
    let entry = &answer["docker_config"]["auths"][key];
    anyhow::ensure!(entry.is_object(), "no docker_config entry {key}: {answer}");
    Ok(entry)
}

#[tokio::test]
#[ignore = "needs a deployment: run cargo xtask e2e"]
async fn an_app_resolves_a_docker_config_whose_registry_login_works() -> anyhow::Result<()> {
    let deployment = Deployment::from_env()?;
    let admin = deployment.admin()?;
    let (first, second, harbor) = (deployment.first(), deployment.second(), deployment.harbor());
    let organization = first.organization(&admin, "e2e-resolve").await?;
    let space = first.space(&admin, &organization, "web").await?;
    let app = first.app(&admin, &space, "frontend").await?;
    let enabled = first
        .post_empty(&admin, &registry_path(&organization))
        .await?
        .expect(201)?;
    let endpoint = enabled["registry"]["endpoint"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no endpoint: {enabled}"))?;
    let team = format!("apps.e2e-{app}.example.com/team");
    first
        .post(
            &admin,
            "/v3/registry_credentials",
            &json!({"location": team, "username": "app-user", "password": "app-pw",
                    "relationships": {"app": {"data": {"guid": app}}}}),
        )
        .await?
        .expect(201)?;

    let own_image = format!("{endpoint}/org-{organization}/web:1.0");
    let team_image = format!("{team}/api:2");
    let body = json!({
        "images": [own_image, team_image, format!("unmatched.e2e-{app}.example.net/x")],
        "relationships": {"app": {"data": {"guid": app}}},
    });
    let deployer = deployment.mint("e2e-deployer", &["berth.pull_secrets"], &[])?;
    let answer = second.post(&deployer, RESOLVE, &body).await?;
    anyhow::ensure!(
        answer.header("cache-control") == Some("no-store"),
        "{:?}",
        answer.headers
    );
    let resolved = answer.expect(200)?;
    let auths = resolved["docker_config"]["auths"]
        .as_object()
        .ok_or_else(|| anyhow::anyhow!("no auths: {resolved}"))?;
    anyhow::ensure!(auths.len() == 2, "{resolved}");
    anyhow::ensure!(
        resolved["resolutions"][2]["credential"].is_null(),
        "an unmatched image resolved: {resolved}"
    );

    // The registry's pull robot, as the kubelet would use it: it logs in at Harbor.
    let (username, password) = docker_login(entry(&resolved, &own_image)?)?;
    anyhow::ensure!(
        username == format!("robot$org-{organization}+berth-pull"),
        "{username}"
    );
    anyhow::ensure!(
        harbor.registry_login_works(&username, &password).await?,
        "the resolved pull robot cannot log in at Harbor"
    );
    let (username, password) = docker_login(entry(&resolved, &team_image)?)?;
    anyhow::ensure!((username.as_str(), password.as_str()) == ("app-user", "app-pw"));

    // Only the pull-secrets scope resolves: an admin without it is refused.
    let plain_admin = deployment.mint("e2e-admin-only", &["berth.admin"], &[])?;
    let refused = first
        .post(&plain_admin, RESOLVE, &body)
        .await?
        .expect(403)?;
    anyhow::ensure!(
        refused["errors"][0]["title"] == "CF-NotAuthorized",
        "{refused}"
    );
    Ok(())
}
