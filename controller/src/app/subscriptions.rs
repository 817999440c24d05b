//! Plans and subscriptions: every write path (management API and control plane) stores the row,
//! then updates the authz service's subscription index, so the next request sees the change.
//! SQLite work runs on the blocking pool.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tollgate_model::FieldError;

use super::{ApiEntry, App, AppError, blocking};
use crate::db::{PlanRow, SubscriptionFilter, SubscriptionRow};
use crate::origin::Origin;
use crate::subs::bodies::{NewSubscription, SubscriptionChange};
use crate::subs::{Subs, plans, rules};

/// A plan write's outcome.
pub type PlanWrite = PlanRow;

/// A subscription write's outcome: the row, its API, and the token when this write made it
/// (shown once).
#[derive(Debug)]
pub struct SubscriptionWrite {
    pub row: SubscriptionRow,
    pub api: Option<Arc<ApiEntry>>,
    pub token: Option<String>,
}

fn invalid(field: &str, message: impl Into<String>) -> AppError {
    AppError::Invalid(vec![FieldError {
        field: field.to_string(),
        message: message.into(),
    }])
}

fn plan_missing(id: &str) -> AppError {
    AppError::Missing(format!("Subscription plan '{id}' not found"))
}

fn subscription_missing(id: &str) -> AppError {
    AppError::Missing(format!("Subscription '{id}' not found"))
}

// === impl App ===

impl App {
    /// Runs `f` with the subscription index on the blocking pool.
    pub(super) async fn with_subs<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Subs) -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        let subs = self.subs.clone();
        blocking(move || f(&subs)).await?
    }

    /// Every plan.
    pub async fn plans(&self) -> Result<Vec<PlanRow>, AppError> {
        self.with_subs(|s| Ok(s.db().plans()?)).await
    }

    /// One plan.
    pub async fn plan(&self, id: &str) -> Result<PlanRow, AppError> {
        let id = id.to_string();
        self.with_subs(move |s| s.db().plan(&id)?.ok_or_else(|| plan_missing(&id)))
            .await
    }

    /// Creates a plan from a management API body.
    pub async fn create_plan(&self, body: Value) -> Result<PlanWrite, AppError> {
        let now = crate::clock::rfc3339_now();
        let row = plans::new_plan(&body, uuid::Uuid::new_v4().to_string(), &now).map_err(AppError::Invalid)?;
        self.with_subs(move |s| {
            s.db().put_plan(&row)?;
            Ok(row)
        })
        .await
    }

    /// Changes the fields of plan `id` the body names; its subscriptions follow at once.
    pub async fn update_plan(&self, id: &str, body: Value) -> Result<PlanWrite, AppError> {
        let id = id.to_string();
        self.with_subs(move |s| {
            let old = s.db().plan(&id)?.ok_or_else(|| plan_missing(&id))?;
            let row = plans::updated_plan(&old, &body, &crate::clock::rfc3339_now()).map_err(AppError::Invalid)?;
            s.db().put_plan(&row)?;
            s.refresh_plan(&id)?;
            Ok(row)
        })
        .await
    }

    /// Deletes plan `id`; refused (409) while subscriptions of this gateway's own use it, so
    /// none of them silently starts answering 403.
    pub async fn delete_plan(&self, id: &str) -> Result<(), AppError> {
        let id = id.to_string();
        self.with_subs(move |s| {
            let used = s.db().subscriptions_on_plan(&id)?;
            if !used.is_empty() {
                return Err(AppError::InUse(format!(
                    "Subscription plan '{id}' is used by {} subscription(s): delete them or move them to another plan first",
                    used.len()
                )));
            }
            if !s.db().delete_plan(&id)? {
                return Err(plan_missing(&id));
            }
            Ok(())
        })
        .await
    }

    /// The API a subscription body names, by handle or UUID.
    fn subscribed_api(&self, id: &str) -> Result<Arc<ApiEntry>, AppError> {
        self.repo
            .get(id)
            .or_else(|| self.repo.by_uuid(id))
            .ok_or_else(|| AppError::Missing(format!("RestAPI with identifier '{id}' not found")))
    }

    /// Checks that plan `plan_id` may be used for `api`: it exists, is `ACTIVE`, and is one the
    /// API offers when it lists `spec.subscriptionPlans` (names compared without case).
    fn check_plan(s: &Subs, api: &ApiEntry, plan_id: &str) -> Result<(), AppError> {
        const F: &str = "subscriptionPlanId";
        let plan = s
            .db()
            .plan(plan_id)?
            .ok_or_else(|| invalid(F, format!("subscription plan '{plan_id}' does not exist")))?;
        if plan.status != "ACTIVE" {
            return Err(invalid(F, format!("subscription plan '{}' is not ACTIVE", plan.name)));
        }
        let offered = api.doc()?.spec.subscription_plans;
        let named = |n: &str| n.eq_ignore_ascii_case(&plan.name) || plan.handle.as_deref() == Some(n);
        if !offered.is_empty() && !offered.iter().any(|n| named(n)) {
            return Err(invalid(
                F,
                format!(
                    "API '{}' does not offer plan '{}' (it offers: {})",
                    api.row.handle,
                    plan.name,
                    offered.join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// Subscribes an application (or anyone holding the token) to an API. Without a token in the
    /// body one is generated and returned once.
    pub async fn create_subscription(&self, new: NewSubscription) -> Result<SubscriptionWrite, AppError> {
        let api = self.subscribed_api(&new.api)?;
        let (token, generated) = match new.token {
            Some(t) => (t, false),
            None => (rules::generate_token().ok_or(AppError::Task)?, true),
        };
        let now = crate::clock::rfc3339_now();
        let row = SubscriptionRow {
            id: uuid::Uuid::new_v4().to_string(),
            api_uuid: api.row.uuid.clone(),
            application_id: new.application_id,
            token_hash: Some(rules::token_hash(&token)),
            previous_token_hash: None,
            previous_expires_at: None,
            plan_id: new.plan_id,
            billing_customer_id: new.billing_customer_id,
            billing_subscription_id: new.billing_subscription_id,
            status: new.status,
            origin: Origin::GatewayApi,
            created_at: now.clone(),
            updated_at: now,
        };
        let a = api.clone();
        let row = self
            .with_subs(move |s| {
                if let Some(p) = &row.plan_id {
                    Self::check_plan(s, &a, p)?;
                }
                s.db().put_subscription(&row)?;
                s.refresh(std::slice::from_ref(&row.id))?;
                Ok(row)
            })
            .await?;
        // A caller-supplied token is theirs already; it is echoed in the 201 only, as in WSO2.
        let _ = generated;
        Ok(SubscriptionWrite {
            row,
            api: Some(api),
            token: Some(token),
        })
    }

    /// The subscriptions `filter` selects; `filter.api_uuid` may hold a handle.
    pub async fn subscriptions(&self, mut filter: SubscriptionFilter) -> Result<Vec<SubscriptionRow>, AppError> {
        if let Some(api) = &filter.api_uuid
            && let Some(e) = self.repo.get(api)
        {
            filter.api_uuid = Some(e.row.uuid.clone());
        }
        self.with_subs(move |s| Ok(s.db().subscriptions(&filter)?)).await
    }

    /// One subscription.
    pub async fn subscription(&self, id: &str) -> Result<SubscriptionRow, AppError> {
        let id = id.to_string();
        self.with_subs(move |s| s.db().subscription(&id)?.ok_or_else(|| subscription_missing(&id)))
            .await
    }

    /// Changes a subscription's status (and plan); enforced from the next request on.
    pub async fn update_subscription(
        &self,
        id: &str,
        change: SubscriptionChange,
    ) -> Result<SubscriptionWrite, AppError> {
        let old = self.subscription(id).await?;
        let api = self.repo.by_uuid(&old.api_uuid);
        let a = api.clone();
        let row = self
            .with_subs(move |s| {
                let mut row = old;
                if let Some(st) = change.status {
                    row.status = st;
                }
                if let Some(plan) = change.plan_id {
                    if let (Some(p), Some(a)) = (&plan, &a) {
                        Self::check_plan(s, a, p)?;
                    }
                    row.plan_id = plan;
                }
                row.updated_at = crate::clock::rfc3339_now();
                s.db().put_subscription(&row)?;
                s.refresh(std::slice::from_ref(&row.id))?;
                Ok(row)
            })
            .await?;
        Ok(SubscriptionWrite { row, api, token: None })
    }

    /// Deletes a subscription; its token is refused from the next request on.
    pub async fn delete_subscription(&self, id: &str) -> Result<(), AppError> {
        let id = id.to_string();
        self.with_subs(move |s| {
            if !s.db().delete_subscription(&id)? {
                return Err(subscription_missing(&id));
            }
            s.forget(std::slice::from_ref(&id));
            Ok(())
        })
        .await
    }

    /// Gives a subscription a new generated token, returned once. The old token is refused from
    /// the next request on, or after `grace` when given.
    pub async fn regenerate_subscription_token(
        &self,
        id: &str,
        grace: Option<Duration>,
    ) -> Result<SubscriptionWrite, AppError> {
        let old = self.subscription(id).await?;
        let api = self.repo.by_uuid(&old.api_uuid);
        let token = rules::generate_token().ok_or(AppError::Task)?;
        let hash = rules::token_hash(&token);
        let row = self
            .with_subs(move |s| {
                let mut row = old;
                let until = grace.map(|g| crate::clock::unix_secs().saturating_add(g.as_secs() as i64));
                row.previous_token_hash = until.and(row.token_hash.take());
                row.previous_expires_at = until;
                row.token_hash = Some(hash);
                row.updated_at = crate::clock::rfc3339_now();
                s.db().put_subscription(&row)?;
                s.refresh(std::slice::from_ref(&row.id))?;
                Ok(row)
            })
            .await?;
        Ok(SubscriptionWrite {
            row,
            api,
            token: Some(token),
        })
    }

    /// Deletes the subscriptions of a deleted API.
    pub(super) async fn api_subscriptions_deleted(&self, api_uuid: &str) -> Result<(), AppError> {
        let uuid = api_uuid.to_string();
        self.with_subs(move |s| {
            let ids = s.db().delete_subscriptions_of(&uuid)?;
            s.forget(&ids);
            Ok(())
        })
        .await
    }

    /// Re-reads the subscriptions of an API that was just stored (the control plane may have
    /// announced them before the API arrived).
    pub(super) async fn api_subscriptions_changed(&self, api_uuid: &str) -> Result<(), AppError> {
        let filter = SubscriptionFilter {
            api_uuid: Some(api_uuid.to_string()),
            ..Default::default()
        };
        self.with_subs(move |s| Ok(s.refresh_where(&filter)?)).await
    }

    /// How many subscriptions are stored (admin API, metrics).
    pub async fn count_subscriptions(&self) -> Result<u64, AppError> {
        self.with_subs(|s| Ok(s.db().count_subscriptions()?)).await
    }
}
