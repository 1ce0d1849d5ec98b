//! The sea-orm `RoleStore` and `DirectoryStore::permission_facts` beyond the contract
//! (`berth_domain::contract::roles`, run in `contract.rs`): statement counts and rollbacks.

use berth_domain::actor::{Role, RoleType};
use berth_domain::directory::{ResourceName, Space};
use berth_domain::ids::{OrganizationGuid, SpaceGuid};
use berth_domain::ports::DirectoryStore;
use berth_domain::roles::{RoleAssignment, RoleGuid, UserGuid};

use crate::stores::organization;
use crate::{Harness, ring};

async fn space(harness: &Harness, organization: OrganizationGuid) -> SpaceGuid {
    let now = berth_domain::now();
    let guid = SpaceGuid::from_uuid(uuid::Uuid::new_v4());
    harness
        .directory
        .spaces()
        .insert(
            &Space {
                guid,
                name: ResourceName::parse("s").unwrap(),
                organization,
                created_at: now,
                updated_at: now,
            },
            &crate::audit_event(),
        )
        .await
        .unwrap();
    guid
}

fn assignment(user: &str, role: Role, organization: OrganizationGuid) -> RoleAssignment {
    let now = berth_domain::now();
    RoleAssignment {
        guid: RoleGuid::from_uuid(uuid::Uuid::new_v4()),
        user: UserGuid::parse(user).unwrap(),
        role,
        organization,
        created_at: now,
        updated_at: now,
    }
}

/// The permission lookup of a caller whose directory roles count is ONE statement, whatever the
/// token's own space roles; a caller reading everything, or with claims only and no space role,
/// makes none.
#[tokio::test]
async fn the_permission_lookup_is_one_statement() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use berth_domain::actor::{Actor, PlatformScope};
    use berth_domain::permissions;
    use berth_persistence::SeaOrmDirectoryStore;

    let harness = Harness::new(ring(&["k"], "k").0).await;
    let org = organization(&harness).await;
    let a1 = space(&harness, org).await;
    let roles = harness.directory.roles();
    for role in [
        assignment(
            "erin",
            RoleType::OrganizationUser.in_organization(org).unwrap(),
            org,
        ),
        assignment("erin", RoleType::SpaceDeveloper.in_space(a1).unwrap(), org),
    ] {
        roles.upsert(&role, &crate::audit_event()).await.unwrap();
    }
    let mut connection = berth_persistence::connect(
        harness.db.url(),
        &berth_persistence::PoolSettings::default(),
    )
    .await
    .unwrap();
    let statements = Arc::new(AtomicUsize::new(0));
    let counter = statements.clone();
    connection.set_metric_callback(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let directory = SeaOrmDirectoryStore::new(connection);
    let token_space = Role::SpaceAuditor(space(&harness, org).await);
    let cases = [
        (
            Actor::new("erin", [], [token_space]).with_directory_roles(),
            1,
        ),
        (Actor::new("erin", [], []).with_directory_roles(), 1),
        (Actor::new("erin", [], [token_space]), 1),
        (Actor::new("erin", [], []), 0),
        (
            Actor::new("erin", [PlatformScope::AdminReadOnly], []).with_directory_roles(),
            0,
        ),
    ];
    for (actor, expected) in cases {
        statements.store(0, Ordering::SeqCst);
        let resolved = permissions::resolve(&actor, &directory).await.unwrap();
        assert_eq!(statements.load(Ordering::SeqCst), expected, "{actor:?}");
        if actor.reads_directory_roles() && !actor.reads_everything() {
            let target = berth_domain::credential::ScopeTarget::Space {
                organization: org,
                space: a1,
            };
            assert!(
                resolved.can_write_credential(&target),
                "the directory's developer role"
            );
        }
    }
}

/// No role change commits without its event: with the event's insert refused, neither a new
/// role nor a role's delete is kept.
#[tokio::test]
async fn a_refused_event_rolls_a_role_change_back() {
    let harness = Harness::new(ring(&["k"], "k").0).await;
    let roles = harness.directory.roles();
    let org = organization(&harness).await;
    let member = assignment(
        "alice",
        RoleType::OrganizationUser.in_organization(org).unwrap(),
        org,
    );
    roles.upsert(&member, &crate::audit_event()).await.unwrap();
    crate::audit::refuse_audit_inserts(&harness).await;

    let manager = assignment(
        "bob",
        RoleType::OrganizationManager.in_organization(org).unwrap(),
        org,
    );
    assert!(roles.upsert(&manager, &crate::audit_event()).await.is_err());
    assert_eq!(roles.get(manager.guid).await.unwrap(), None);
    assert!(
        roles
            .delete(member.guid, &crate::audit_event())
            .await
            .is_err()
    );
    assert_eq!(roles.get(member.guid).await.unwrap(), Some(member));
}
