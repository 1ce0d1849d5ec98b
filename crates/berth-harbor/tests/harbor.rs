//! The Harbor adapter against the emulator over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use berth_domain::ports::{ProvisionError, RegistryProvisioner};
use berth_domain::registry::{ExpiresInDays, ProjectName, QuotaGb, RobotAccess, RobotName};
use berth_harbor::{HarborClient, HarborSettings};
use harbor_emulator::{DropRule, EmulatorConfig, FailRule, Faults, RunningEmulator, start};
use secrecy::{ExposeSecret, SecretString};

fn emulator() -> RunningEmulator {
    let (emulator, server) = start(EmulatorConfig::default(), "127.0.0.1:0").unwrap();
    tokio::spawn(server);
    emulator
}

fn project(name: &str) -> ProjectName {
    ProjectName::parse(name).unwrap()
}

fn robot(name: &str) -> RobotName {
    RobotName::parse(name).unwrap()
}

fn gb(quota: u64) -> QuotaGb {
    QuotaGb::new(quota).unwrap()
}

fn client(url: &str, password: &str, timeout: Duration) -> HarborClient {
    HarborClient::new(HarborSettings {
        url: url.into(),
        username: "admin".into(),
        password: SecretString::from(password),
        connect_timeout: Duration::from_secs(2),
        request_timeout: timeout,
        registry_endpoint: None,
    })
    .unwrap()
}

#[tokio::test]
async fn provisions_a_project_quota_and_robots() {
    let harbor = emulator();
    let client = client(harbor.url(), "Harbor12345", Duration::from_secs(5));
    assert_eq!(client.endpoint(), format!("127.0.0.1:{}", harbor.port()));
    let id = client
        .create_project(&project("org-1"), gb(10))
        .await
        .unwrap();
    assert_eq!(
        client.create_project(&project("org-1"), gb(1)).await,
        Err(ProvisionError::Conflict)
    );
    let found = client
        .find_project(&project("org-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.id, found.owner_name.as_str()), (id, "admin"));
    assert!(
        client
            .find_project(&project("org-2"))
            .await
            .unwrap()
            .is_none()
    );

    let quota = client.project_quota(id).await.unwrap();
    assert_eq!(quota.hard_bytes, 10 * 1024 * 1024 * 1024);
    client.set_quota(quota.id, gb(20)).await.unwrap();
    assert_eq!(harbor.state().quotas[0].hard_bytes, 20 * 1024 * 1024 * 1024);
    harbor.set_usage("org-1", 1234);
    assert_eq!(client.project_quota(id).await.unwrap().used_bytes, 1234);

    let created = client
        .create_robot(
            &project("org-1"),
            &robot("berth-default"),
            RobotAccess::PushPull,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        created.robot.username, "robot$org-1+berth-default",
        "the full name comes from Harbor"
    );
    assert_eq!(created.robot.expires_at, None);
    let permissions = &harbor.state().robots[0].permissions;
    assert_eq!(permissions[0]["access"].as_array().unwrap().len(), 2);
    assert!(matches!(
        client
            .create_robot(
                &project("org-1"),
                &robot("berth-default"),
                RobotAccess::PushPull,
                None
            )
            .await,
        Err(ProvisionError::Conflict)
    ));
    let pull = client
        .create_robot(
            &project("org-1"),
            &robot("ci"),
            RobotAccess::Pull,
            Some(ExpiresInDays::new(30).unwrap()),
        )
        .await
        .unwrap();
    assert!(pull.robot.expires_at.is_some());

    let found = client
        .find_robot(id, &project("org-1"), &robot("berth-default"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, created.robot.id);
    assert!(
        client
            .find_robot(id, &project("org-1"), &robot("nope"))
            .await
            .unwrap()
            .is_none()
    );
    let secret = client.refresh_robot_secret(found.id).await.unwrap();
    assert_ne!(secret.expose_secret(), created.secret.expose_secret());

    client.delete_robot(found.id).await.unwrap();
    assert_eq!(
        client.delete_robot(found.id).await,
        Err(ProvisionError::NotFound)
    );
    harbor.add_repositories("org-1", 1);
    assert!(matches!(
        client.delete_project(id).await,
        Err(ProvisionError::Precondition(_))
    ));
}

#[tokio::test]
async fn harbor_failures_become_domain_errors() {
    let harbor = emulator();
    let wrong = client(harbor.url(), "wrong-password", Duration::from_secs(5));
    assert_eq!(
        wrong.create_project(&project("org-1"), gb(1)).await,
        Err(ProvisionError::Misconfigured)
    );

    let unreachable = client("http://127.0.0.1:1", "x", Duration::from_secs(2));
    assert!(matches!(
        unreachable.create_project(&project("org-1"), gb(1)).await,
        Err(ProvisionError::Unavailable(_))
    ));

    let good = client(harbor.url(), "Harbor12345", Duration::from_millis(300));
    harbor.set_faults(Faults {
        latency_ms: 1000,
        ..Faults::default()
    });
    assert_eq!(
        good.create_project(&project("org-1"), gb(1)).await,
        Err(ProvisionError::Unavailable("timed out".into()))
    );
    harbor.set_faults(Faults {
        fail: vec![FailRule {
            route: "GET /projects/{project}".into(),
            nth: 1,
            status: 502,
        }],
        ..Faults::default()
    });
    // An idempotent read is retried once, so a single 502 is absorbed.
    assert!(good.find_project(&project("org-1")).await.is_ok());
    harbor.set_faults(Faults {
        fail: vec![FailRule {
            route: "POST /projects".into(),
            nth: 1,
            status: 500,
        }],
        ..Faults::default()
    });
    assert!(matches!(
        good.create_project(&project("org-9"), gb(1)).await,
        Err(ProvisionError::Unavailable(_))
    ));
    assert!(
        harbor.state().projects.iter().all(|p| p.name != "org-9"),
        "a POST is never retried"
    );
    // Berth's types cannot carry a name Harbor refuses, so Harbor's refusals are scripted.
    for status in [400, 422] {
        harbor.set_faults(Faults {
            fail: vec![FailRule {
                route: "POST /projects".into(),
                nth: 1,
                status,
            }],
            ..Faults::default()
        });
        let rejected = good.create_project(&project("org-10"), gb(1)).await;
        assert!(
            matches!(rejected, Err(ProvisionError::Rejected(_))),
            "{status}: {rejected:?}"
        );
    }
}

#[tokio::test]
async fn a_dropped_answer_is_unavailable_although_the_work_was_done() {
    let harbor = emulator();
    let client = client(harbor.url(), "Harbor12345", Duration::from_secs(5));
    client
        .create_project(&project("org-1"), gb(1))
        .await
        .unwrap();
    harbor.set_faults(Faults {
        drop: vec![DropRule {
            route: "POST /robots".into(),
            nth: 1,
        }],
        ..Faults::default()
    });
    let result = client
        .create_robot(
            &project("org-1"),
            &robot("berth-default"),
            RobotAccess::PushPull,
            None,
        )
        .await;
    assert!(
        matches!(result, Err(ProvisionError::Unavailable(_))),
        "{:?}",
        result.as_ref().err()
    );
    assert_eq!(
        harbor.state().robots.len(),
        1,
        "Harbor made the robot before the connection was cut"
    );
}

#[tokio::test]
async fn the_request_id_travels_to_harbor() {
    let harbor = emulator();
    let client = client(harbor.url(), "Harbor12345", Duration::from_secs(5));
    berth_harbor::request_id::REQUEST_ID
        .scope("req-4242".to_owned(), async {
            client.find_project(&project("x")).await.unwrap()
        })
        .await;
    assert!(harbor.state().request_ids.contains(&"req-4242".to_owned()));
}

#[tokio::test]
async fn renews_robots_and_purges_repositories_page_by_page() {
    let harbor = emulator();
    let client = client(harbor.url(), "Harbor12345", Duration::from_secs(5));
    let id = client
        .create_project(&project("org-2"), gb(1))
        .await
        .unwrap();
    let created = client
        .create_robot(
            &project("org-2"),
            &robot("ci"),
            RobotAccess::Pull,
            Some(ExpiresInDays::new(2).unwrap()),
        )
        .await
        .unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let renewed = client
        .renew_robot(created.robot.id, Some(ExpiresInDays::new(30).unwrap()))
        .await
        .unwrap();
    let expires = renewed.expires_at.unwrap().unix_timestamp();
    assert!(
        (now + 30 * 86_400..=now + 31 * 86_400).contains(&expires),
        "{renewed:?}"
    );
    let in_harbor = harbor.state().robots[0].clone();
    assert_eq!(in_harbor.expires_at, expires, "Harbor's own expiry");
    assert_eq!(
        in_harbor.permissions[0]["access"].as_array().unwrap().len(),
        1,
        "kept"
    );
    let never = client.renew_robot(created.robot.id, None).await.unwrap();
    assert_eq!(
        (never.expires_at, harbor.state().robots[0].expires_at),
        (None, -1)
    );
    client.delete_robot(created.robot.id).await.unwrap();
    assert_eq!(
        client.renew_robot(created.robot.id, None).await,
        Err(ProvisionError::NotFound)
    );

    // The first page, by names inside the project; a `/` survives Harbor's double decoding.
    harbor.add_repositories("org-2", 105);
    let page = client.repositories(&project("org-2")).await.unwrap();
    assert_eq!(page.len(), 100);
    assert!(
        page.iter().all(|name| name.starts_with("team/app-")),
        "{page:?}"
    );
    for name in &page {
        client
            .delete_repository(&project("org-2"), name)
            .await
            .unwrap();
    }
    assert_eq!(
        client.delete_repository(&project("org-2"), &page[0]).await,
        Err(ProvisionError::NotFound)
    );
    assert!(matches!(
        client.delete_project(id).await,
        Err(ProvisionError::Precondition(_))
    ));
    let rest = client.repositories(&project("org-2")).await.unwrap();
    assert_eq!(rest.len(), 5);
    for name in &rest {
        client
            .delete_repository(&project("org-2"), name)
            .await
            .unwrap();
    }
    assert!(
        client
            .repositories(&project("org-2"))
            .await
            .unwrap()
            .is_empty()
    );
    client.delete_project(id).await.unwrap();
    assert_eq!(
        client.repositories(&project("org-2")).await,
        Err(ProvisionError::NotFound)
    );
}
