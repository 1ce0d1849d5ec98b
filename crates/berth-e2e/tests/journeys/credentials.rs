//! Registry credentials (the first seed): create with labels, page through a label selector by
//! the V3 pagination links, read, update and delete, over both replicas.

use berth_e2e::{Berth, Deployment, fresh_guid};
use serde_json::{Value, json};

fn locations(page: &Value) -> Vec<String> {
    page["resources"]
        .as_array()
        .map(|resources| {
            resources
                .iter()
                .filter_map(|resource| resource["location"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs a deployment: run cargo xtask e2e"]
async fn credentials_with_labels_page_by_selector_and_follow_their_links() -> anyhow::Result<()> {
    let deployment = Deployment::from_env()?;
    let admin = deployment.admin()?;
    let (first, second) = (deployment.first(), deployment.second());
    // A label only this run carries: the selector sees this journey's credentials only.
    let run = fresh_guid();
    let mut created = Vec::new();
    for index in 0..5 {
        let env = if index < 3 { "prod" } else { "dev" };
        let body = json!({
            "location": format!("r{index}.e2e-{run}.example.com"),
            "username": format!("user-{index}"),
            "password": format!("secret-{index}"),
            "metadata": {"labels": {"e2e-run": run, "env": env}, "annotations": {"index": index.to_string()}},
        });
        let resource = first
            .post(&admin, "/v3/registry_credentials", &body)
            .await?
            .expect(201)?;
        anyhow::ensure!(
            resource.get("password").is_none(),
            "a password in {resource}"
        );
        anyhow::ensure!(resource["scope"] == "foundation", "{resource}");
        created.push(resource);
    }

    let selector = format!("e2e-run%3D{run}%2Cenv%3Dprod");
    let page1 = second
        .get(
            &admin,
            &format!(
                "/v3/registry_credentials?label_selector={selector}&order_by=location&per_page=2"
            ),
        )
        .await?
        .expect(200)?;
    let pagination = &page1["pagination"];
    anyhow::ensure!(pagination["total_results"] == 3, "{page1}");
    anyhow::ensure!(pagination["total_pages"] == 2, "{page1}");
    anyhow::ensure!(pagination["previous"].is_null(), "{page1}");
    let next = pagination["next"]["href"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no next link: {page1}"))?;
    anyhow::ensure!(
        next.contains("label_selector=") && next.contains("page=2"),
        "{next}"
    );
    let page2 = second
        .get(&admin, &Berth::path_of(next)?)
        .await?
        .expect(200)?;
    anyhow::ensure!(page2["pagination"]["next"].is_null(), "{page2}");
    let mut seen = locations(&page1);
    seen.extend(locations(&page2));
    let expected: Vec<String> = (0..3)
        .map(|index| format!("r{index}.e2e-{run}.example.com"))
        .collect();
    anyhow::ensure!(seen == expected, "{seen:?} != {expected:?}");

    // Set-based selectors: `in`, and `!=` against the same run.
    let dev = second
        .get(
            &admin,
            &format!("/v3/registry_credentials?label_selector=e2e-run%3D{run}%2Cenv%20in%20(dev)"),
        )
        .await?
        .expect(200)?;
    anyhow::ensure!(dev["pagination"]["total_results"] == 2, "{dev}");

    // Written on the first replica, updated on the second, read back on the first.
    let guid = created[0]["guid"].as_str().unwrap_or_default().to_owned();
    let path = format!("/v3/registry_credentials/{guid}");
    let updated = second
        .patch(
            &admin,
            &path,
            &json!({"username": "renamed", "metadata": {"labels": {"env": null, "team": "blue"}}}),
        )
        .await?
        .expect(200)?;
    anyhow::ensure!(updated["username"] == "renamed", "{updated}");
    let shown = first.get(&admin, &path).await?.expect(200)?;
    anyhow::ensure!(shown["username"] == "renamed", "{shown}");
    anyhow::ensure!(
        shown["metadata"]["labels"] == json!({"e2e-run": run, "team": "blue"}),
        "{shown}"
    );

    first.delete(&admin, &path).await?.expect(204)?;
    let gone = second.get(&admin, &path).await?.expect(404)?;
    anyhow::ensure!(
        gone["errors"][0]["title"] == "CF-ResourceNotFound",
        "{gone}"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs a deployment: run cargo xtask e2e"]
async fn callers_are_authenticated_and_bad_input_is_a_clear_4xx() -> anyhow::Result<()> {
    let deployment = Deployment::from_env()?;
    let admin = deployment.admin()?;
    for berth in deployment.replicas() {
        let anonymous = berth
            .call(
                reqwest::Method::GET,
                "/v3/registry_credentials",
                None,
                None,
                &[],
            )
            .await?
            .expect(401)?;
        anyhow::ensure!(
            anonymous["errors"][0]["title"] == "CF-NotAuthenticated",
            "{anonymous}"
        );
        let forged = berth
            .get("not-a-token", "/v3/registry_credentials")
            .await?
            .expect(401)?;
        anyhow::ensure!(
            forged["errors"][0]["title"] == "CF-InvalidAuthToken",
            "{forged}"
        );
        let bad = berth
            .get(&admin, "/v3/registry_credentials?per_page=0")
            .await?
            .expect(400)?;
        anyhow::ensure!(bad["errors"][0]["title"] == "CF-BadQueryParameter", "{bad}");
        let invalid = berth
            .post(
                &admin,
                "/v3/registry_credentials",
                &json!({"location": "", "username": "u"}),
            )
            .await?
            .expect(422)?;
        anyhow::ensure!(
            invalid["errors"][0]["title"] == "CF-UnprocessableEntity",
            "{invalid}"
        );
    }
    Ok(())
}
