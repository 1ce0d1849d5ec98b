#![doc = include_str!("../README.md")]

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_create_directory;
mod m20261124_000002_create_registry_credentials;
mod m20261124_000003_create_registries;
mod m20261124_000004_label_organizations;
mod m20261130_000005_credentials_organization_created_at;
mod m20261130_000006_managed_pull_robots;
mod m20261130_000010_create_idempotency_keys;
mod m20261130_000020_create_audit_events;
mod m20261130_000030_create_roles;

/// Every migration, in order. Each schema change is a new migration; applied ones never change.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_directory::Migration),
            Box::new(m20261124_000002_create_registry_credentials::Migration),
            Box::new(m20261124_000003_create_registries::Migration),
            Box::new(m20261124_000004_label_organizations::Migration),
            Box::new(m20261130_000005_credentials_organization_created_at::Migration),
            Box::new(m20261130_000006_managed_pull_robots::Migration),
            Box::new(m20261130_000010_create_idempotency_keys::Migration),
            Box::new(m20261130_000020_create_audit_events::Migration),
            Box::new(m20261130_000030_create_roles::Migration),
        ]
    }
}
