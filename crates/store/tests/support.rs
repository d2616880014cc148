//! A fresh store per test, and subjects to act as.

use std::{path::PathBuf, sync::Arc};

use gatehouse_rbac::{AllowList, Scope, Subject, subject::Membership};
use gatehouse_store::{Db, Store, models::Organization, system::system_restricted};
use uuid::Uuid;

// The store's tests run their scenarios on a fresh store per backend
// (`crate::on_both_backends!`, from the shared test-support crate).
gatehouse_test_support::backends!(TestStore);

pub struct TestStore {
    pub store: Store,
    pub org: Organization,
    path: Option<PathBuf>,
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            gatehouse_test_support::remove_sqlite_files(path);
        }
    }
}

impl std::ops::Deref for TestStore {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.store
    }
}

impl TestStore {
    pub async fn sqlite() -> TestStore {
        let path = gatehouse_test_support::sqlite_path("gatehouse-store");
        let mut store = TestStore::with(Db::sqlite(&path).await.unwrap()).await;
        store.path = Some(path);
        store
    }

    pub async fn postgres() -> Option<TestStore> {
        let url = gatehouse_test_support::postgres_url()?;
        let schema = gatehouse_test_support::fresh_schema(&url, "gh_store").await;
        Some(TestStore::with(Db::postgres(&url, Some(&schema)).await.unwrap()).await)
    }

    async fn with(db: Db) -> TestStore {
        let store = Store::new(db);
        store.migrate().await.unwrap();
        // Migrating twice is a no-op.
        store.migrate().await.unwrap();
        let org = store
            .ensure_default_organization(system_restricted())
            .await
            .unwrap();
        TestStore {
            store,
            org,
            path: None,
        }
    }

    /// A user subject with `coder:all` and the given site roles, member of the default org.
    pub fn subject(&self, id: Uuid, site_roles: &[&str]) -> Subject {
        let roles: Vec<String> = site_roles.iter().map(|s| (*s).to_owned()).collect();
        let membership = Membership {
            org: self.org.id,
            roles: vec![],
            default_roles: vec![],
            service_account: false,
        };
        Subject::for_user(
            id,
            "test".into(),
            &roles,
            &[membership],
            vec![],
            Arc::new(Scope::all()),
        )
        .unwrap()
    }

    /// A subject whose key carries only the given allow list and scopes.
    pub fn scoped_subject(&self, id: Uuid, scopes: &[gatehouse_rbac::ScopeName]) -> Subject {
        let scope = Arc::new(Scope::from_key(scopes, &AllowList::all()));
        Subject::for_user(id, "test".into(), &[], &[], vec![], scope).unwrap()
    }
}
