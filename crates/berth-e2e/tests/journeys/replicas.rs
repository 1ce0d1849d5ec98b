//! Two replicas on one database: concurrent writes through both settle as one.

use berth_e2e::{Deployment, registry_path};
use futures_util::future::join_all;

#[tokio::test]
#[ignore = "needs a deployment: run cargo xtask e2e"]
async fn concurrent_enables_on_both_replicas_give_one_registry() -> anyhow::Result<()> {
    let deployment = Deployment::from_env()?;
    let admin = deployment.admin()?;
    let organization = deployment.first().organization(&admin, "e2e-race").await?;
    let path = registry_path(&organization);
    let answers = join_all((0..20).map(|index| {
        let berth = &deployment.replicas()[index % 2];
        berth.post_empty(&admin, &path)
    }))
    .await;
    let mut created = Vec::new();
    for answer in answers {
        let answer = answer?;
        match answer.status {
            201 => created.push(answer.body),
            409 => {
                let code = answer.body["error"]["code"].as_str().unwrap_or_default();
                anyhow::ensure!(
                    code == "registry_provisioning" || code == "registry_already_enabled",
                    "{}: {}",
                    answer.request,
                    answer.body
                );
            }
            other => anyhow::bail!("{} answered {other}: {}", answer.request, answer.body),
        }
    }
    anyhow::ensure!(
        created.len() == 1,
        "{} enables succeeded: {created:?}",
        created.len()
    );

    let project = format!("org-{organization}");
    let harbor = deployment.harbor();
    anyhow::ensure!(
        harbor.project(&project).await?.is_some(),
        "no Harbor project {project}"
    );
    let robots = harbor.robots_of(&project).await?;
    anyhow::ensure!(
        robots.len() == 2,
        "one default robot and one pull robot, not {robots:?}"
    );
    let credentials = &created[0]["credentials"];
    anyhow::ensure!(
        harbor
            .registry_login_works(
                credentials["username"].as_str().unwrap_or_default(),
                credentials["password"].as_str().unwrap_or_default(),
            )
            .await?,
        "the one answered secret does not work at Harbor"
    );
    for berth in deployment.replicas() {
        let shown = berth.get(&admin, &path).await?.expect(200)?;
        anyhow::ensure!(shown["id"] == created[0]["registry"]["id"], "{shown}");
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs a deployment: run cargo xtask e2e"]
async fn a_write_on_either_replica_is_read_on_the_other() -> anyhow::Result<()> {
    let deployment = Deployment::from_env()?;
    let admin = deployment.admin()?;
    for (writer, reader) in [
        (deployment.first(), deployment.second()),
        (deployment.second(), deployment.first()),
    ] {
        let organization = writer.organization(&admin, "e2e-replicated").await?;
        let shown = reader
            .get(&admin, &format!("/v3/organizations/{organization}"))
            .await?
            .expect(200)?;
        anyhow::ensure!(shown["name"] == "e2e-replicated", "{shown}");
        writer
            .delete(&admin, &format!("/v3/organizations/{organization}"))
            .await?
            .expect(204)?;
        reader
            .get(&admin, &format!("/v3/organizations/{organization}"))
            .await?
            .expect(404)?;
    }
    Ok(())
}
