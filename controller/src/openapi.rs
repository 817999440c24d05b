//! The OpenAPI 3.1 document of the management API (`/api/management/v1`) and the admin API
//! (`/api/admin/v1`), generated from the code: each handler's `#[utoipa::path]` annotation, the
//! lists next to each router (`api::ManagementDoc`, `admin::AdminDoc`) and the body schemas under
//! `openapi/`. Served without credentials at `GET /api/management/v1/openapi.json` (it describes,
//! it holds no data). A test checks it against the routes the routers really serve.

pub(crate) mod admin;
pub(crate) mod consumers;
pub(crate) mod schemas;
pub(crate) mod secrets;

use std::collections::btree_map::Entry;
use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::schema::{OneOfBuilder, Schema};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::server::{Server, ServerBuilder, ServerVariableBuilder};
use utoipa::openapi::{Content, OpenApi as Document, Ref, RefOr, Response as Answer, ResponseBuilder};
use utoipa::{Modify, OpenApi};

/// The name of the HTTP basic security scheme every protected operation requires.
pub const BASIC: &str = "basicAuth";

/// What the info block says about the two APIs.
const DESCRIPTION: &str = "The management API (port `server.management_port`, default 9090) and the admin \
API (port `server.admin_port`, default 9092) of Tollgate, a gateway controller for Envoy. Every \
route is also served without its `/api/.../v1` prefix (deprecated: such answers carry \
`Deprecation`, `Link` and `Warning` headers). Authentication is HTTP basic; each operation names \
the roles it admits (`admin`, `developer`, `consumer`). Refusals by authentication are \
`{code, message}`; every other refusal is `{status: \"error\", message, errors?: [{field, message}]}`. \
Request bodies may be JSON or YAML.";

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Tollgate management and admin APIs", description = DESCRIPTION),
    nest(
        (path = "/api/management/v1", api = crate::api::ManagementDoc),
        (path = "/api/admin/v1", api = crate::admin::AdminDoc),
    ),
    components(schemas(schemas::DeniedBody, schemas::ErrorBody)),
    modifiers(&Security, &Servers),
    tags(
        (name = "rest-apis", description = "RestApi documents: deploy, list, replace, delete"),
        (name = "api-keys", description = "API keys of one API"),
        (name = "policies", description = "The policy catalogue and its parameter schemas"),
        (name = "subscription-plans", description = "Quota plans (admin)"),
        (name = "subscriptions", description = "Subscriptions and their tokens (admin)"),
        (name = "secrets", description = "Encrypted secrets that API documents name with {{ secret \"id\" }} (admin)"),
        (name = "meta", description = "This document"),
        (name = "admin", description = "The admin API, on the admin port"),
    ),
)]
struct Doc;

/// The document, built from the annotations.
pub fn document() -> Document {
    Doc::openapi()
}

/// `GET /api/management/v1/openapi.json`: the document, serialised once.
#[utoipa::path(
    get,
    path = "/openapi.json", operation_id = "getOpenApi",
    tag = "meta",
    summary = "This OpenAPI document",
    description = "No credentials needed: it describes the APIs and holds no data.",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")),
)]
pub async fn serve() -> Response {
    static JSON: OnceLock<String> = OnceLock::new();
    let body = JSON.get_or_init(|| document().to_json().unwrap_or_else(|_| "{}".into()));
    let mut resp = body.clone().into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Adds the basic scheme, and to every operation that does not say otherwise (`security(())`)
/// the requirement and the answers of authentication: 401, 403 and 429 in the `{code, message}`
/// shape.
#[derive(Debug)]
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BASIC,
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        let denied = |what: &str| {
            ResponseBuilder::new()
                .description(what)
                .content(
                    "application/json",
                    Content::new(Some(Ref::from_schema_name("DeniedBody"))),
                )
                .build()
        };
        let answers = [
            ("401", denied("No or wrong credentials (`WWW-Authenticate: Basic`)")),
            ("403", denied("The user has none of the roles this route admits")),
            (
                "429",
                denied("Too many failed logins; retry after `Retry-After` seconds"),
            ),
        ];
        for item in doc.paths.paths.values_mut() {
            let ops = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete];
            for op in ops.into_iter().flatten() {
                if op.security.is_some() {
                    continue;
                }
                op.security = Some(vec![SecurityRequirement::new(BASIC, Vec::<String>::new())]);
                for (code, answer) in &answers {
                    match op.responses.responses.entry((*code).to_string()) {
                        Entry::Vacant(v) => {
                            v.insert(RefOr::T(answer.clone()));
                        }
                        Entry::Occupied(mut o) => {
                            if let RefOr::T(own) = o.get_mut() {
                                or_denied(own);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A handler's own answer with a status authentication also gives (403: someone else's key):
/// either shape may come.
fn or_denied(own: &mut Answer) {
    own.description.push_str("; or, from the role check, `{code, message}`");
    for content in own.content.values_mut() {
        if let RefOr::T(content) = content
            && let Some(schema) = content.schema.take()
        {
            let either = OneOfBuilder::new()
                .item(schema)
                .item(Ref::from_schema_name("DeniedBody"));
            content.schema = Some(RefOr::T(Schema::OneOf(either.build())));
        }
    }
}

/// The two APIs listen on two ports: the document's servers say which, with the host, scheme and
/// port as variables (defaults: `http://localhost`, 9090 and 9092).
#[derive(Debug)]
struct Servers;

/// A server on `port` by default, described as `what`.
fn server(port: &str, what: &str) -> Server {
    let variable = |default: &str, description: &str| {
        ServerVariableBuilder::new()
            .default_value(default)
            .description(Some(description))
    };
    ServerBuilder::new()
        .url("{scheme}://{host}:{port}")
        .description(Some(what))
        .parameter(
            "scheme",
            variable("http", "`https` when the port serves TLS").enum_values(Some(["http", "https"])),
        )
        .parameter("host", variable("localhost", "the controller's host"))
        .parameter("port", variable(port, "the configured port"))
        .build()
}

impl Modify for Servers {
    fn modify(&self, doc: &mut Document) {
        doc.servers = Some(vec![server("9090", "The management API (`server.management_port`)")]);
        let admin = server("9092", "The admin API (`server.admin_port`)");
        for (path, item) in doc.paths.paths.iter_mut() {
            if path.starts_with(crate::admin::BASE) {
                item.servers = Some(vec![admin.clone()]);
            }
        }
    }
}

#[cfg(test)]
mod tests;
