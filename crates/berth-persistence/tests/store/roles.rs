//! Contract tests of `RoleStore` and `DirectoryStore::permission_facts`.

use berth_domain::actor::{Role, RoleType};
use berth_domain::directory::{ResourceName, Space};
use berth_domain::ids::{OrganizationGuid, SpaceGuid};
use berth_domain::ports::{DirectoryStore, RoleRemoval, RoleUpsert, StoreError};
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

#[tokio::test]
async fn upserts_follow_cloud_controllers_rules() {
    let harness = Harness::new(ring(&["k"], "k").0).await;
    let roles = harness.directory.roles();
    let org = organization(&harness).await;
    let space = space(&harness, org).await;
    let developer = assignment(
        "alice",
        RoleType::SpaceDeveloper.in_space(space).unwrap(),
        org,
    );
    assert_eq!(
        roles
            .upsert(&developer, &crate::audit_event())
            .await
            .unwrap(),
        RoleUpsert::NoOrganizationRole
    );
    let member = assignment(
        "alice",
        RoleType::OrganizationUser.in_organization(org).unwrap(),
        org,
    );
    assert_eq!(
        roles.upsert(&member, &crate::audit_event()).await.unwrap(),
        RoleUpsert::Created
    );
    assert_eq!(
        roles
            .upsert(&developer, &crate::audit_event())
            .await
            .unwrap(),
        RoleUpsert::Created
    );
    assert_eq!(
        roles
            .upsert(&developer, &crate::audit_event())
            .await
            .unwrap(),
        RoleUpsert::Exists(developer.clone())
    );
    let twin = RoleAssignment {
        guid: RoleGuid::from_uuid(uuid::Uuid::new_v4()),
        ..developer.clone()
    };
    assert_eq!(
        roles.upsert(&twin, &crate::audit_event()).await.unwrap(),
        RoleUpsert::GrantTaken
    );
    let nowhere = OrganizationGuid::from_uuid(uuid::Uuid::new_v4());
    let orphan = assignment(
        "alice",
        RoleType::OrganizationManager
            .in_organization(nowhere)
            .unwrap(),
        nowhere,
    );
    assert!(matches!(
        roles.upsert(&orphan, &crate::audit_event()).await,
        Err(StoreError::MissingParent)
    ));
    assert_eq!(roles.get(developer.guid).await.unwrap(), Some(developer));
}

#[tokio::test]
async fn the_last_organization_role_stays_while_space_roles_need_it() {
    let harness = Harness::new(ring(&["k"], "k").0).await;
    let roles = harness.directory.roles();
    let org = organization(&harness).await;
    let space = space(&harness, org).await;
    let member = assignment(
        "bob",
        RoleType::OrganizationAuditor.in_organization(org).unwrap(),
        org,
    );
    let auditor = assignment("bob", RoleType::SpaceAuditor.in_space(space).unwrap(), org);
    roles.upsert(&member, &crate::audit_event()).await.unwrap();
    roles.upsert(&auditor, &crate::audit_event()).await.unwrap();
    assert_eq!(
        roles
            .delete(member.guid, &crate::audit_event())
            .await
            .unwrap(),
        RoleRemoval::SpaceRolesRemain(1)
    );
    assert_eq!(
        roles
            .delete(auditor.guid, &crate::audit_event())
            .await
            .unwrap(),
        RoleRemoval::Deleted
    );
    assert_eq!(
        roles
            .delete(member.guid, &crate::audit_event())
            .await
            .unwrap(),
        RoleRemoval::Deleted
    );
    assert!(matches!(
        roles.delete(member.guid, &crate::audit_event()).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn permission_facts_give_the_users_roles_and_every_spaces_organization() {
    let harness = Harness::new(ring(&["k"], "k").0).await;
    let roles = harness.directory.roles();
    let org_a = organization(&harness).await;
    let org_b = organization(&harness).await;
    let a1 = space(&harness, org_a).await;
    let b1 = space(&harness, org_b).await;
    for role in [
        assignment(
            "carol",
            RoleType::OrganizationUser.in_organization(org_a).unwrap(),
            org_a,
        ),
        assignment(
            "carol",
            RoleType::SpaceDeveloper.in_space(a1).unwrap(),
            org_a,
        ),
        assignment(
            "dave",
            RoleType::OrganizationManager
                .in_organization(org_b)
                .unwrap(),
            org_b,
        ),
    ] {
        assert_eq!(
            roles.upsert(&role, &crate::audit_event()).await.unwrap(),
            RoleUpsert::Created
        );
    }
    // The token's own space role (b1), and one the directory does not know.
    let unknown = SpaceGuid::from_uuid(uuid::Uuid::new_v4());
    let mut facts = harness
        .directory
        .permission_facts("carol", &[b1, unknown])
        .await
        .unwrap();
    facts.roles.sort();
    facts.space_organizations.sort();
    assert_eq!(
        facts.roles,
        vec![Role::OrganizationUser(org_a), Role::SpaceDeveloper(a1)]
    );
    let mut expected = vec![(a1, org_a), (b1, org_b)];
    expected.sort();
    assert_eq!(facts.space_organizations, expected);
    let none = harness
        .directory
        .permission_facts("nobody", &[])
        .await
        .unwrap();
    assert!(none.roles.is_empty() && none.space_organizations.is_empty());
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
