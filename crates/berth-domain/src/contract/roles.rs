//! The contract of [`RoleStore`](crate::ports::RoleStore) (reached as
//! [`DirectoryStore::roles`](crate::ports::DirectoryStore::roles)) and of
//! [`DirectoryStore::permission_facts`](crate::ports::DirectoryStore::permission_facts).

use time::Duration;
use uuid::Uuid;

use super::{Stores, event, organization};
use crate::actor::{Role, RoleType};
use crate::directory::{ResourceName, Space};
use crate::ids::{OrganizationGuid, SpaceGuid};
use crate::listing::{Direction, Ordering, PageRequest};
use crate::permissions::DirectoryVisibility;
use crate::ports::{RoleRemoval, RoleUpsert, StoreError};
use crate::roles::{RoleAssignment, RoleGuid, RoleOrderField, RoleQuery, UserGuid};

async fn space(stores: &Stores, organization: OrganizationGuid) -> SpaceGuid {
    let now = crate::now();
    let guid = SpaceGuid::from_uuid(Uuid::new_v4());
    stores
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
            &event(),
        )
        .await
        .unwrap();
    guid
}

fn assignment(user: &str, role: Role, organization: OrganizationGuid) -> RoleAssignment {
    let now = crate::now();
    RoleAssignment {
        guid: RoleGuid::from_uuid(Uuid::new_v4()),
        user: UserGuid::parse(user).unwrap(),
        role,
        organization,
        created_at: now,
        updated_at: now,
    }
}

/// Upserts follow Cloud Controller: a space role needs an organization role, a taken guid
/// answers the stored role, a taken grant is refused, a missing organization or space too.
pub async fn upserts_follow_cloud_controllers_rules(stores: &Stores) {
    let roles = stores.directory.roles();
    let org = organization(stores).await;
    let space = space(stores, org).await;
    let developer = assignment(
        "alice",
        RoleType::SpaceDeveloper.in_space(space).unwrap(),
        org,
    );
    assert_eq!(
        roles.upsert(&developer, &event()).await.unwrap(),
        RoleUpsert::NoOrganizationRole
    );
    let member = assignment(
        "alice",
        RoleType::OrganizationUser.in_organization(org).unwrap(),
        org,
    );
    assert_eq!(
        roles.upsert(&member, &event()).await.unwrap(),
        RoleUpsert::Created
    );
    assert_eq!(
        roles.upsert(&developer, &event()).await.unwrap(),
        RoleUpsert::Created
    );
    assert_eq!(
        roles.upsert(&developer, &event()).await.unwrap(),
        RoleUpsert::Exists(developer.clone())
    );
    let twin = RoleAssignment {
        guid: RoleGuid::from_uuid(Uuid::new_v4()),
        ..developer.clone()
    };
    assert_eq!(
        roles.upsert(&twin, &event()).await.unwrap(),
        RoleUpsert::GrantTaken
    );
    let nowhere = OrganizationGuid::from_uuid(Uuid::new_v4());
    let orphan = assignment(
        "alice",
        RoleType::OrganizationManager
            .in_organization(nowhere)
            .unwrap(),
        nowhere,
    );
    assert!(matches!(
        roles.upsert(&orphan, &event()).await,
        Err(StoreError::MissingParent)
    ));
    let lost = assignment(
        "alice",
        RoleType::SpaceAuditor
            .in_space(SpaceGuid::from_uuid(Uuid::new_v4()))
            .unwrap(),
        org,
    );
    assert!(matches!(
        roles.upsert(&lost, &event()).await,
        Err(StoreError::MissingParent)
    ));
    assert_eq!(roles.get(developer.guid).await.unwrap(), Some(developer));
    assert_eq!(roles.get(twin.guid).await.unwrap(), None);
}

/// The user's last organization role stays while the user holds space roles in that
/// organization; an unknown role is not found.
pub async fn the_last_organization_role_stays_while_space_roles_need_it(stores: &Stores) {
    let roles = stores.directory.roles();
    let org = organization(stores).await;
    let space = space(stores, org).await;
    let member = assignment(
        "bob",
        RoleType::OrganizationAuditor.in_organization(org).unwrap(),
        org,
    );
    let auditor = assignment("bob", RoleType::SpaceAuditor.in_space(space).unwrap(), org);
    roles.upsert(&member, &event()).await.unwrap();
    roles.upsert(&auditor, &event()).await.unwrap();
    assert_eq!(
        roles.delete(member.guid, &event()).await.unwrap(),
        RoleRemoval::SpaceRolesRemain(1)
    );
    assert_eq!(roles.get(member.guid).await.unwrap(), Some(member.clone()));
    assert_eq!(
        roles.delete(auditor.guid, &event()).await.unwrap(),
        RoleRemoval::Deleted
    );
    assert_eq!(
        roles.delete(member.guid, &event()).await.unwrap(),
        RoleRemoval::Deleted
    );
    assert!(matches!(
        roles.delete(member.guid, &event()).await,
        Err(StoreError::NotFound)
    ));
}

/// The permission lookup gives the user's roles, and the organization of each space they name
/// and of each asked-for space that exists.
pub async fn permission_facts_give_the_users_roles_and_every_spaces_organization(stores: &Stores) {
    let roles = stores.directory.roles();
    let org_a = organization(stores).await;
    let org_b = organization(stores).await;
    let a1 = space(stores, org_a).await;
    let b1 = space(stores, org_b).await;
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
            roles.upsert(&role, &event()).await.unwrap(),
            RoleUpsert::Created
        );
    }
    // The token's own space role (b1), and one the directory does not know.
    let unknown = SpaceGuid::from_uuid(Uuid::new_v4());
    let mut facts = stores
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
    let none = stores
        .directory
        .permission_facts("nobody", &[])
        .await
        .unwrap();
    assert!(none.roles.is_empty() && none.space_organizations.is_empty());
}

/// Lists keep to what the caller may see (and its own roles), apply each filter, order by the
/// asked field then guid, and page with the total.
pub async fn lists_filter_order_page_and_keep_to_the_visible(stores: &Stores) {
    let roles = stores.directory.roles();
    let org_a = organization(stores).await;
    let org_b = organization(stores).await;
    let a1 = space(stores, org_a).await;
    let b1 = space(stores, org_b).await;
    let start = crate::now();
    let mut stored = Vec::new();
    for (offset, (user, role, organization)) in [
        (
            "u1",
            RoleType::OrganizationUser.in_organization(org_a),
            org_a,
        ),
        ("u1", RoleType::SpaceDeveloper.in_space(a1), org_a),
        (
            "u2",
            RoleType::OrganizationManager.in_organization(org_b),
            org_b,
        ),
        ("u2", RoleType::SpaceManager.in_space(b1), org_b),
        (
            "u3",
            RoleType::OrganizationUser.in_organization(org_b),
            org_b,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let created_at = start + Duration::seconds(offset as i64);
        let role = RoleAssignment {
            created_at,
            // Updated in the opposite order, so the two fields order differently.
            updated_at: start + Duration::seconds(10 - offset as i64),
            ..assignment(user, role.unwrap(), organization)
        };
        roles.upsert(&role, &event()).await.unwrap();
        stored.push(role);
    }
    let everything = |query: RoleQuery| RoleQuery {
        visibility: DirectoryVisibility::Everything,
        page: PageRequest::new(1, 50).unwrap(),
        ..query
    };
    let guids = |page: &crate::listing::Page<RoleAssignment>| {
        page.items.iter().map(|role| role.guid).collect::<Vec<_>>()
    };
    let of = |indexes: &[usize]| indexes.iter().map(|&i| stored[i].guid).collect::<Vec<_>>();

    let all = roles.list(&everything(RoleQuery::default())).await.unwrap();
    assert_eq!((guids(&all), all.total_results), (of(&[0, 1, 2, 3, 4]), 5));
    let newest_updated = roles
        .list(&everything(RoleQuery {
            order: Some(Ordering {
                field: RoleOrderField::UpdatedAt,
                direction: Direction::Ascending,
            }),
            ..RoleQuery::default()
        }))
        .await
        .unwrap();
    assert_eq!(guids(&newest_updated), of(&[4, 3, 2, 1, 0]));
    let second_page = roles
        .list(&RoleQuery {
            order: Some(Ordering {
                field: RoleOrderField::CreatedAt,
                direction: Direction::Descending,
            }),
            page: PageRequest::new(2, 2).unwrap(),
            ..everything(RoleQuery::default())
        })
        .await
        .unwrap();
    assert_eq!(
        (guids(&second_page), second_page.total_results),
        (of(&[2, 1]), 5)
    );

    let filtered = |query: RoleQuery| {
        let roles = stores.directory.clone();
        async move { guids(&roles.roles().list(&everything(query)).await.unwrap()) }
    };
    assert_eq!(
        filtered(RoleQuery {
            types: Some(vec![RoleType::OrganizationUser]),
            ..RoleQuery::default()
        })
        .await,
        of(&[0, 4])
    );
    assert_eq!(
        filtered(RoleQuery {
            user_guids: Some(vec!["u2".to_owned()]),
            ..RoleQuery::default()
        })
        .await,
        of(&[2, 3])
    );
    // As Cloud Controller: an organization filter selects organization roles only.
    assert_eq!(
        filtered(RoleQuery {
            organization_guids: Some(vec![org_b.as_uuid()]),
            ..RoleQuery::default()
        })
        .await,
        of(&[2, 4])
    );
    assert_eq!(
        filtered(RoleQuery {
            space_guids: Some(vec![a1.as_uuid(), b1.as_uuid()]),
            ..RoleQuery::default()
        })
        .await,
        of(&[1, 3])
    );
    assert_eq!(
        filtered(RoleQuery {
            guids: Some(vec![stored[4].guid.as_uuid(), Uuid::new_v4()]),
            ..RoleQuery::default()
        })
        .await,
        of(&[4])
    );

    // A member of org_a who manages org_b, viewing as u3: org_a's organization roles, every
    // space role of org_b, and u3's own.
    let scoped = roles
        .list(&RoleQuery {
            visibility: DirectoryVisibility::Scoped {
                organizations: vec![org_a],
                managed_organizations: vec![org_b],
                spaces: Vec::new(),
            },
            viewer: Some("u3".to_owned()),
            page: PageRequest::new(1, 50).unwrap(),
            ..RoleQuery::default()
        })
        .await
        .unwrap();
    assert_eq!((guids(&scoped), scoped.total_results), (of(&[0, 3, 4]), 3));
    let in_a1 = roles
        .list(&RoleQuery {
            visibility: DirectoryVisibility::Scoped {
                organizations: Vec::new(),
                managed_organizations: Vec::new(),
                spaces: vec![a1],
            },
            page: PageRequest::new(1, 50).unwrap(),
            ..RoleQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(guids(&in_a1), of(&[1]));
}

/// A role write keeps its event; a refused or idle one (exists, taken grant, no organization
/// role, space roles remaining, not found) keeps none.
pub async fn role_writes_keep_their_event_and_refused_ones_none(stores: &Stores) {
    let roles = stores.directory.roles();
    let org = organization(stores).await;
    let space = space(stores, org).await;
    let kept = |written: crate::audit::AuditEvent| {
        let events = stores.audit_events.clone();
        async move { events.get(written.guid).await.unwrap().is_some() }
    };
    let member = assignment(
        "erin",
        RoleType::OrganizationUser.in_organization(org).unwrap(),
        org,
    );
    let developer = assignment(
        "erin",
        RoleType::SpaceDeveloper.in_space(space).unwrap(),
        org,
    );
    let early = event();
    assert_eq!(
        roles.upsert(&developer, &early).await.unwrap(),
        RoleUpsert::NoOrganizationRole
    );
    assert!(!kept(early).await);
    let created = event();
    roles.upsert(&member, &created).await.unwrap();
    assert!(kept(created).await);
    roles.upsert(&developer, &event()).await.unwrap();
    for (role, outcome) in [
        (member.clone(), RoleUpsert::Exists(member.clone())),
        (
            RoleAssignment {
                guid: RoleGuid::from_uuid(Uuid::new_v4()),
                ..member.clone()
            },
            RoleUpsert::GrantTaken,
        ),
    ] {
        let idle = event();
        assert_eq!(roles.upsert(&role, &idle).await.unwrap(), outcome);
        assert!(!kept(idle).await);
    }
    let refused = event();
    assert_eq!(
        roles.delete(member.guid, &refused).await.unwrap(),
        RoleRemoval::SpaceRolesRemain(1)
    );
    assert!(!kept(refused).await);
    let deleted = event();
    roles.delete(developer.guid, &deleted).await.unwrap();
    assert!(kept(deleted).await);
    let missing = event();
    assert!(matches!(
        roles.delete(developer.guid, &missing).await,
        Err(StoreError::NotFound)
    ));
    assert!(!kept(missing).await);
}

/// Organizations and spaces refuse deletion while roles are in them, counting the roles.
pub async fn organizations_and_spaces_with_roles_refuse_deletion(stores: &Stores) {
    let directory = &stores.directory;
    let roles = directory.roles();
    let org = organization(stores).await;
    let space = space(stores, org).await;
    let member = assignment(
        "frank",
        RoleType::OrganizationUser.in_organization(org).unwrap(),
        org,
    );
    let auditor = assignment(
        "frank",
        RoleType::SpaceAuditor.in_space(space).unwrap(),
        org,
    );
    roles.upsert(&member, &event()).await.unwrap();
    roles.upsert(&auditor, &event()).await.unwrap();
    match directory.spaces().delete(space, &event()).await {
        Err(StoreError::InUse(dependents)) => assert_eq!(dependents.roles, 1),
        other => panic!("expected InUse, got {other:?}"),
    }
    roles.delete(auditor.guid, &event()).await.unwrap();
    directory.spaces().delete(space, &event()).await.unwrap();
    match directory.organizations().delete(org, &event()).await {
        Err(StoreError::InUse(dependents)) => {
            assert_eq!((dependents.spaces, dependents.roles), (0, 1));
        }
        other => panic!("expected InUse, got {other:?}"),
    }
    roles.delete(member.guid, &event()).await.unwrap();
    directory
        .organizations()
        .delete(org, &event())
        .await
        .unwrap();
}
