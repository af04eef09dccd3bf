//! `POST /v1/feedback`: a user's score for a response, stored durably and folded into scoring.
//! Body: `{"response_id"?: "<x-request-id>", "score": -1..1, "model_name"?, "category"?,
//! "comment"?}`; errors are 400 in the OpenAI shape.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::auth::Client;
// A response's one rating is a lease held as long as its decision can be rated.
use crate::cluster::DECISION_TTL;
use crate::error::RequestError;
use crate::routing::analysis::Category;
use crate::routing::ModelCatalog;
use crate::store::{now_unix_ms, DecisionRecord, Feedback, Record, StoreStatus};
use crate::RouterState;

const MAX_COMMENT_CHARS: usize = 2000;

/// Stores the feedback and answers `{"status":"success","id":...}`. `client`: the API key's
/// client, who may rate only its own responses and models.
pub async fn accept(
    state: &Arc<RouterState>,
    raw: &[u8],
    client: Option<&Client>,
) -> Result<Value, RequestError> {
    if !state.config.feedback.enabled {
        return Err(RequestError::FeedbackDisabled);
    }
    let id = store(state, raw, client).await?;
    Ok(json!({"status": "success", "id": id}))
}

/// What a feedback body says, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackRequest {
    pub response_id: Option<String>,
    pub score: f32,
    pub model_name: Option<String>,
    pub category: Option<Category>,
    pub comment: Option<String>,
}

fn invalid(field: &'static str, why: &str) -> RequestError {
    RequestError::InvalidField {
        field,
        why: why.to_string(),
    }
}

pub fn parse(raw: &[u8]) -> Result<FeedbackRequest, RequestError> {
    let value: Value =
        serde_json::from_slice(raw).map_err(|e| RequestError::MalformedJson(e.to_string()))?;
    let Value::Object(body) = value else {
        return Err(RequestError::NotAnObject);
    };
    let text = |field: &'static str, max: usize| -> Result<Option<String>, RequestError> {
        match body.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.chars().count() > max => {
                Err(invalid(field, &format!("is longer than {max} characters")))
            }
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(_) => Err(invalid(field, "must be a string")),
        }
    };
    let score = match body.get("score") {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(_) => {
            return Err(invalid(
                "score",
                "must be a number from -1 (bad) to 1 (good)",
            ))
        }
        None => {
            return Err(invalid(
                "score",
                "is required: a number from -1 (bad) to 1 (good)",
            ))
        }
    };
    if !(-1.0..=1.0).contains(&score) {
        return Err(invalid("score", &format!("{score} is outside -1..1")));
    }
    let category = match text("category", 64)? {
        None => None,
        Some(name) => Some(Category::parse(&name).ok_or_else(|| {
            invalid(
                "category",
                "must be one of coding, reasoning, creativity, factual",
            )
        })?),
    };
    Ok(FeedbackRequest {
        response_id: text("response_id", 256)?,
        score: score as f32,
        model_name: text("model_name", 256)?,
        category,
        comment: text("comment", MAX_COMMENT_CHARS)?,
    })
}

/// How long a feedback request waits for the store to open (after a restart or an upgrade).
const STORE_WAIT: Duration = Duration::from_secs(5);
/// How long it waits for its own write to reach the disk.
const WRITE_WAIT: Duration = Duration::from_secs(10);

/// The decision a response id names: in memory, else on disk, else (in a process that has
/// handed the store over during an upgrade) from the new owner of the store.
async fn find_decision(
    state: &Arc<RouterState>,
    id: &str,
) -> Result<Option<DecisionRecord>, RequestError> {
    if let Some(found) = state.recent.get(id) {
        return Ok(Some(found));
    }
    // Another instance of the cluster may have served it.
    if let Some(cluster) = state.cluster.as_ref().filter(|c| c.is_up()) {
        if let Some(found) = cluster.decision(id).await {
            return Ok(Some(found));
        }
    }
    if state.store.status() == StoreStatus::Released {
        return crate::store::owner::decision(state.store.dir(), id)
            .await
            .map_err(RequestError::StoreUnavailable);
    }
    let store =
        state
            .store
            .wait_open(STORE_WAIT)
            .await
            .ok_or_else(|| match state.store.status() {
                StoreStatus::Failed => RequestError::Internal(
                    "the store could not be opened; see the router's log".to_string(),
                ),
                _ => RequestError::StoreUnavailable(
                    "another process still holds it; try again in a few seconds".to_string(),
                ),
            })?;
    let wanted = id.to_string();
    // A disk read, off the async workers.
    let found = tokio::task::spawn_blocking(move || store.decision(&wanted))
        .await
        .map_err(|e| RequestError::Internal(e.to_string()))?
        .map_err(|e| RequestError::Internal(e.to_string()))?;
    if found.is_some() || !state.store.handover_active() {
        return Ok(found);
    }
    // During an upgrade the old process may have answered this response a moment ago; its
    // decision reaches us through the owner socket within milliseconds.
    for _ in 0..HANDOVER_POLLS {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Some(found) = state.recent.get(id) {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Polls (20 ms apart) for a decision the old process may still be handing over.
const HANDOVER_POLLS: usize = 50;

async fn store(
    state: &Arc<RouterState>,
    raw: &[u8],
    client: Option<&Client>,
) -> Result<u64, RequestError> {
    let request = parse(raw)?;
    let decision = match &request.response_id {
        None => None,
        Some(id) => find_decision(state, id).await?,
    };
    check_owner(decision.as_ref(), client)?;
    let model = match (&decision, &request.model_name) {
        (Some(d), _) => d.model.clone(),
        (None, Some(name)) => state.registry.resolve(name).ok_or_else(|| {
            invalid(
                "model_name",
                &format!("{name:?} is not a model of any node (GET /v1/models lists them)"),
            )
        })?,
        (None, None) => {
            return Err(invalid(
                "model_name",
                "is required when response_id is missing or unknown (response_id is the x-request-id of the response)",
            ))
        }
    };
    if let Some(client) = client.filter(|c| !c.may_use(&model)) {
        return Err(RequestError::NotPermitted(format!(
            "model {model:?} is not among the models of API key {:?} (router.auth.api_keys[].models)",
            client.name
        )));
    }
    if decision.as_ref().is_some_and(|d| d.background) {
        return Err(invalid(
            "response_id",
            "is a background request of the client app (a chat title, tags or follow-ups), not an answer to rate",
        ));
    }
    let category = request.category.or_else(|| {
        decision
            .as_ref()
            .and_then(|d| d.category.as_deref())
            .and_then(Category::parse)
    });
    let already_rated = || {
        invalid(
            "response_id",
            "was already rated; each response takes one rating",
        )
    };
    let cluster = state.cluster.as_ref().filter(|c| c.is_up());
    let mut claimed_in_cluster = false;
    if let (Some(response_id), Some(_)) = (&request.response_id, &decision) {
        if let Some(cluster) = cluster {
            match cluster.lease("rating", response_id, DECISION_TTL).await {
                Some(false) => return Err(already_rated()),
                Some(true) => claimed_in_cluster = true,
                None => {}
            }
        }
        if !state.recent.mark_rated(response_id) {
            if claimed_in_cluster {
                // Rated here before Redis knew (during an outage): the claim is not ours.
                if let Some(cluster) = cluster {
                    cluster.release("rating", response_id).await;
                }
            }
            return Err(already_rated());
        }
    }
    let id = state.next_feedback_id();
    let feedback = Feedback {
        id,
        response_id: request.response_id,
        model: model.clone(),
        category: category.map(|c| c.as_str().to_string()),
        score: request.score,
        comment: request.comment,
        unix_ms: now_unix_ms(),
    };
    let unix_ms = feedback.unix_ms;
    let rated = feedback.response_id.clone().filter(|_| decision.is_some());
    let shared = cluster.map(|_| feedback.clone());
    let stored_as = match state
        .store_tx
        .send_durable(Record::Feedback(feedback), WRITE_WAIT)
        .await
    {
        Ok(id) => id,
        Err(why) => {
            // Not stored, so the client may send it again.
            if let Some(response_id) = rated {
                state.recent.unmark_rated(&response_id);
                if let (Some(cluster), true) = (cluster, claimed_in_cluster) {
                    cluster.release("rating", &response_id).await;
                }
            }
            return Err(RequestError::StoreUnavailable(why));
        }
    };
    state.feedback.add(&model, category, request.score, unix_ms);
    // Stored here first, so an acknowledged feedback survives whatever Redis does.
    if let (Some(cluster), Some(mut shared)) = (cluster, shared) {
        shared.id = stored_as;
        cluster.share_feedback(&shared).await;
    }
    Ok(stored_as)
}

/// A response made with an API key is rated only with a key of the same tenant.
fn check_owner(
    decision: Option<&DecisionRecord>,
    client: Option<&Client>,
) -> Result<(), RequestError> {
    let Some(owner) = decision.and_then(|d| d.tenant.as_deref()) else {
        return Ok(());
    };
    match client {
        // Keys were turned off since: nobody is told apart any more.
        None => Ok(()),
        Some(client) if client.name == owner => Ok(()),
        Some(_) => Err(RequestError::NotPermitted(
            "response_id belongs to a response made with another API key; rate responses with the key that asked for them".to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_feedback_parses() {
        let f =
            parse(br#"{"response_id":"abc","score":-0.5,"category":"coding","comment":" meh "}"#)
                .unwrap();
        assert_eq!(f.score, -0.5);
        assert_eq!(f.category, Some(Category::Coding));
        assert_eq!(f.comment.as_deref(), Some("meh"));
    }

    #[test]
    fn invalid_feedback_names_the_field() {
        let field = |raw: &[u8]| match parse(raw) {
            Err(RequestError::InvalidField { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(br#"{"score": 2}"#), "score");
        assert_eq!(field(br#"{"score": "good"}"#), "score");
        assert_eq!(field(br#"{}"#), "score");
        assert_eq!(field(br#"{"score": 1, "category": "poetry"}"#), "category");
        assert_eq!(field(br#"{"score": 1, "model_name": 5}"#), "model_name");
        assert!(matches!(
            parse(b"nope"),
            Err(RequestError::MalformedJson(_))
        ));
    }
}
