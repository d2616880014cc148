//! A fresh store per test, and subjects to act as.

use std::{path::PathBuf, sync::Arc};

use gatehouse_rbac::{AllowList, Scope, Subject, subject::Membership};
use gatehouse_store::{Db, Store, models::Organization, system::system_restricted};
use uuid::Uuid;

#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test]
                async fn sqlite() {
                    super::$scenario($crate::support::TestStore::sqlite().await).await;
                }

                #[tokio::test]
                async fn postgres() {
                    if let Some(store) = $crate::support::TestStore::postgres().await {
                        super::$scenario(store).await;
                    }
                }
            }
        )*
    };
}

pub struct TestStore {
    pub store: Store,
    pub org: Organization,
    path: Option<PathBuf>,
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
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
        let path =
            std::env::temp_dir().join(format!("gatehouse-store-{}.db", Uuid::new_v4().simple()));
        let mut store = TestStore::with(Db::sqlite(&path).await.unwrap()).await;
        store.path = Some(path);
        store
    }

    pub async fn postgres() -> Option<TestStore> {
        let url = std::env::var("TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty());
        let Some(url) = url else {
            eprintln!("TEST_POSTGRES_URL is not set: skipping the PostgreSQL run of this test");
            return None;
        };
        let schema = format!("gh_store_{}", Uuid::new_v4().simple());
        if let Db::Postgres(pool) = Db::postgres(&url, None).await.unwrap() {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
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
