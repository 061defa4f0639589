//! `clamator dashboard`: a web page for the people who run the worker pools — every service
//! under a prefix with its rate, backlog, consumers and dead letters, live; a page per service
//! with consumers, pending entries and dead letters (replay, drop) and a form to call a method.
//!
//! One process, no frontend build: the page, its script and its style are embedded in the
//! binary. The page renders everything from the JSON API under `/api/` (documented in the
//! README) with DOM text nodes, never `innerHTML`, so what an envelope holds is shown, not run.
//!
//! Safe by default: it binds loopback and then answers only requests whose `Host` is a loopback
//! name (a DNS-rebinding page cannot reach it); every mutating request is a `POST` that must
//! carry the page's CSRF token in `X-Clamator-Csrf` (a header another origin cannot set without a
//! CORS preflight, which is never granted), and `--read-only` removes the actions altogether.
//! With `--token`, every request but the login page and the static assets needs the token, reads
//! included (dead letters can hold personal data): `Authorization: Bearer …`, or the HttpOnly,
//! `SameSite=Strict` cookie the login page sets. Redis URLs and passwords never reach the page.

pub mod data;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use clamator::{AnyClient, CallError, RpcClient};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Broker;
use data::{MethodRow, Overview, Sampler};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const LOGIN_HTML: &str = include_str!("assets/login.html");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// How the dashboard runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The key prefix of the services shown.
    pub prefix: String,
    /// Where to listen.
    pub listen: SocketAddr,
    /// No replay, drop or call: the page shows, nothing more.
    pub read_only: bool,
    /// A token every mutating request must carry (`Authorization: Bearer <token>`).
    pub token: Option<String>,
    /// Time between samples of the overview.
    pub interval: Duration,
    /// Consumers idle for less than this count as alive.
    pub alive_within: Duration,
    /// Time between walks of the keyspace for new services and reply streams.
    pub discover_every: Duration,
    /// Samples kept per service for the sparklines.
    pub history: usize,
    /// Contract documents by service (from `--docs`).
    pub docs: Vec<clamator_codegen::ContractDoc>,
}

struct AppState {
    options: Options,
    /// Cancelled at shutdown: ends the event streams so that connections can close.
    stop: CancellationToken,
    broker: Broker,
    client: Option<AnyClient>,
    overview: watch::Receiver<Arc<Overview>>,
    csrf: String,
    /// One sampler per service page, shared by all its viewers (see [`page_feed`]).
    pages: std::sync::Mutex<HashMap<String, Arc<watch::Sender<Option<PageSample>>>>>,
    /// Set when a page asks for a service the overview does not know: the next overview sample
    /// walks the keyspace again.
    rediscover: Arc<AtomicBool>,
}

/// What a service page's sampler publishes: the detail, or why the broker could not be read.
type PageSample = Result<Arc<data::ServiceDetail>, String>;

type Shared = Arc<AppState>;

/// An error answered as JSON `{"error": "..."}`.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

/// A failed read of the broker, for the API.
fn broker_error(e: &crate::Error) -> ApiError {
    ApiError(
        StatusCode::BAD_GATEWAY,
        format!("reading the broker failed: {e}"),
    )
}

fn random_token() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares in time independent of where the first difference is.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether `host` (a `Host` header) names this machine's loopback.
fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    matches!(name, "localhost" | "127.0.0.1" | "::1") || name.ends_with(".localhost")
}

/// Every request: on a loopback listener, the `Host` must be a loopback name (DNS rebinding).
async fn guard_host(
    State(state): State<Shared>,
    request: Request<axum::body::Body>,
    next: Next,
) -> Response {
    if state.options.listen.ip().is_loopback() {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !loopback_host(host) {
            return ApiError(
                StatusCode::FORBIDDEN,
                format!(
                    "Host {host:?} is not a loopback name: this dashboard listens on loopback only"
                ),
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// The cookie the login page sets when `--token` is given.
const TOKEN_COOKIE: &str = "clamator_token";

/// Whether a request carries the `--token` (header or cookie); always when none is set.
fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(token) = &state.options.token else {
        return true;
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == TOKEN_COOKIE)
        .map(|(_, value)| value);
    [bearer, cookie]
        .into_iter()
        .flatten()
        .any(|given| same_secret(given, token))
}

/// With `--token`: every request needs it, except the login page and the static assets; a page
/// asked for without it gets the login form, an API request a 401.
async fn guard_token(
    State(state): State<Shared>,
    request: Request<axum::body::Body>,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if path == "/login" || path.starts_with("/assets/") || authorized(&state, request.headers()) {
        return next.run(request).await;
    }
    if path.starts_with("/api/") {
        return ApiError(
            StatusCode::UNAUTHORIZED,
            "this dashboard needs its --token (Authorization: Bearer <token>, or log in at /login)"
                .into(),
        )
        .into_response();
    }
    let next_path = path.to_owned();
    login_page(StatusCode::UNAUTHORIZED, &next_path, None)
}

fn login_page(status: StatusCode, next: &str, failure: Option<&str>) -> Response {
    let html = LOGIN_HTML
        .replace("{{next}}", &escape_attr(next))
        .replace("{{failure}}", &failure.map(escape_attr).unwrap_or_default());
    (
        status,
        [
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'self'; img-src data:; form-action 'self'; frame-ancestors 'none'; \
                 base-uri 'none'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(html),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct Login {
    token: String,
    #[serde(default)]
    next: String,
}

/// `GET /login`: the form.
async fn login_form() -> Response {
    login_page(StatusCode::OK, "/", None)
}

/// `POST /login`: the right token sets the cookie and goes back to the page asked for.
async fn login(State(state): State<Shared>, Form(login): Form<Login>) -> Response {
    // only a path of this server (`/…`, not `//host`)
    let next = if login.next.starts_with('/') && !login.next.starts_with("//") {
        login.next
    } else {
        "/".to_owned()
    };
    match &state.options.token {
        Some(token) if same_secret(&login.token, token) => (
            StatusCode::SEE_OTHER,
            [
                (
                    header::SET_COOKIE,
                    format!("{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"),
                ),
                (header::LOCATION, next),
            ],
        )
            .into_response(),
        Some(_) => login_page(StatusCode::UNAUTHORIZED, &next, Some("wrong token")),
        None => (StatusCode::SEE_OTHER, [(header::LOCATION, next)]).into_response(),
    }
}

/// Mutating requests: not read-only, the CSRF header, the token when one is set, and an
/// `Origin` (when the browser sends one) naming this server.
fn check_mutation(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.options.read_only {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "this dashboard is read-only (--read-only)".into(),
        ));
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let (Some(origin), Some(host)) = (header("origin"), header("host")) {
        let ours = ["http://", "https://"]
            .iter()
            .any(|scheme| origin.strip_prefix(scheme) == Some(host));
        if !ours {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                format!("cross-origin request from {origin} refused"),
            ));
        }
    }
    if !header("x-clamator-csrf").is_some_and(|t| same_secret(t, &state.csrf)) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "missing or wrong X-Clamator-Csrf header (reload the page)".into(),
        ));
    }
    if !authorized(state, headers) {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "this dashboard needs its --token (Authorization: Bearer <token>, or log in at /login)"
                .into(),
        ));
    }
    Ok(())
}

fn escape_attr(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&#39;")
}

async fn page(State(state): State<Shared>) -> Response {
    let html = INDEX_HTML
        .replace("{{prefix}}", &escape_attr(&state.options.prefix))
        .replace("{{csrf}}", &state.csrf)
        .replace(
            "{{read_only}}",
            if state.options.read_only {
                "true"
            } else {
                "false"
            },
        );
    (
        [
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(html),
    )
        .into_response()
}

async fn app_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
}

async fn style_css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLE_CSS,
    )
}

async fn api_overview(State(state): State<Shared>) -> Json<Overview> {
    Json((**state.overview.borrow()).clone())
}

async fn api_events(
    State(state): State<Shared>,
) -> Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let mut rx = state.overview.clone();
    rx.mark_changed(); // the current overview first
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        let overview = rx.borrow_and_update().clone();
        let event = Event::default()
            .event("overview")
            .json_data(&*overview)
            .unwrap_or_else(|e| Event::default().event("error").data(e.to_string()));
        Some((Ok(event), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn methods_of(options: &Options, service: &str) -> Option<Vec<MethodRow>> {
    let doc = options.docs.iter().find(|d| d.service == service)?;
    Some(
        doc.methods
            .iter()
            .map(|m| MethodRow {
                name: m.name.clone(),
                notification: m.notification,
                params: m.params.clone(),
                result: m.result.clone(),
                description: m.description.clone(),
            })
            .collect(),
    )
}

impl AppState {
    /// One service in detail, read from the broker now.
    async fn detail(&self, service: &str) -> Result<data::ServiceDetail, crate::Error> {
        self.broker
            .service_detail(
                service,
                self.options.alive_within,
                methods_of(&self.options, service),
            )
            .await
    }
}

impl AppState {
    /// Asks for a discovery when `service` is not in the overview yet.
    fn note_service(&self, service: &str) {
        if !self
            .overview
            .borrow()
            .services
            .iter()
            .any(|s| s.service == service)
        {
            self.rediscover.store(true, Ordering::Relaxed);
        }
    }
}

/// A subscription to the sampler of `service`'s page, started by its first viewer and ended
/// when its last viewer leaves: any number of viewers cost Redis what one does.
fn page_feed(state: &Shared, service: &str) -> watch::Receiver<Option<PageSample>> {
    let mut pages = state
        .pages
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(feed) = pages.get(service) {
        return feed.subscribe();
    }
    let (tx, rx) = watch::channel(None);
    let tx = Arc::new(tx);
    pages.insert(service.to_owned(), Arc::clone(&tx));
    tokio::spawn(page_sampler(Arc::clone(state), service.to_owned(), tx));
    rx
}

/// Reads one service page every interval (at least 1 s) while it has viewers.
async fn page_sampler(state: Shared, service: String, tx: Arc<watch::Sender<Option<PageSample>>>) {
    let every = state.options.interval.max(Duration::from_secs(1));
    loop {
        {
            let mut pages = state
                .pages
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if tx.receiver_count() == 0 {
                if pages.get(&service).is_some_and(|t| Arc::ptr_eq(t, &tx)) {
                    pages.remove(&service);
                }
                return;
            }
        }
        let sample = match state.detail(&service).await {
            Ok(detail) => Ok(Arc::new(detail)),
            Err(e) => Err(format!("reading {} failed: {e}", state.broker.kind())),
        };
        tx.send_replace(Some(sample));
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = state.stop.cancelled() => return,
        }
    }
}

fn check_service(service: &str) -> Result<(), ApiError> {
    if clamator::wire::is_valid_service(service) {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("invalid service name {service:?}"),
        ))
    }
}

async fn api_service(
    State(state): State<Shared>,
    Path(service): Path<String>,
) -> Result<Json<data::ServiceDetail>, ApiError> {
    check_service(&service)?;
    state.note_service(&service);
    Ok(Json(
        state.detail(&service).await.map_err(|e| broker_error(&e))?,
    ))
}

/// The service page's live updates: its detail every interval (at least 1 s), from the page's
/// one shared sampler; dead letters only when they changed since this viewer's previous event.
async fn api_service_events(
    State(state): State<Shared>,
    Path(service): Path<String>,
) -> Result<Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError> {
    check_service(&service)?;
    state.note_service(&service);
    let mut feed = page_feed(&state, &service);
    feed.mark_changed(); // the current sample first, if there is one
    let stop = state.stop.clone();
    let stream = futures::stream::unfold(
        (feed, stop, None::<Vec<String>>),
        |(mut feed, stop, mut shown)| async move {
            let sample = loop {
                tokio::select! {
                    changed = feed.changed() => changed.ok()?,
                    () = stop.cancelled() => return None,
                }
                if let Some(sample) = feed.borrow_and_update().clone() {
                    break sample;
                }
            };
            let event = match sample {
                Ok(detail) => {
                    let ids: Vec<String> = detail
                        .dead_letters
                        .iter()
                        .flatten()
                        .map(|d| d.id.clone())
                        .collect();
                    if shown.as_ref() == Some(&ids) {
                        let mut detail = (*detail).clone();
                        detail.dead_letters = None;
                        Event::default().event("service").json_data(&detail)
                    } else {
                        shown = Some(ids);
                        Event::default().event("service").json_data(&*detail)
                    }
                }
                Err(reason) => Ok(Event::default().event("failure").data(reason)),
            }
            .unwrap_or_else(|e| Event::default().event("failure").data(e.to_string()));
            Some((Ok(event), (feed, stop, shown)))
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[derive(Debug, Deserialize)]
struct Selection {
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    all: bool,
}

async fn api_dead_letters(
    State(state): State<Shared>,
    Path((service, action)): Path<(String, String)>,
    headers: HeaderMap,
    Json(selection): Json<Selection>,
) -> Result<Json<Value>, ApiError> {
    check_mutation(&state, &headers)?;
    check_service(&service)?;
    if selection.ids.is_empty() != selection.all {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "give either \"ids\" (a non-empty list) or \"all\": true".into(),
        ));
    }
    let done = match action.as_str() {
        "replay" => state.broker.replay(&service, &selection.ids).await,
        "drop" => {
            state
                .broker
                .drop_dead_letters(&service, &selection.ids)
                .await
        }
        other => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("no dead-letter action {other:?} (replay, drop)"),
            ))
        }
    }
    .map_err(|e| broker_error(&e))?;
    let n = done.count;
    tracing::info!(
        service,
        action,
        n,
        "dead letters replayed or dropped from the dashboard"
    );
    Ok(Json(
        json!({ "action": action, "count": n, "unknown": done.unknown }),
    ))
}

#[derive(Debug, Deserialize)]
struct CallRequest {
    method: String,
    #[serde(default)]
    params: Option<Value>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

async fn api_call(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(call): Json<CallRequest>,
) -> Result<Json<Value>, ApiError> {
    check_mutation(&state, &headers)?;
    let Some(client) = &state.client else {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "this dashboard is read-only (--read-only)".into(),
        ));
    };
    let (service, method) = call.method.split_once('.').ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("expected <service>.<method>, got {:?}", call.method),
        )
    })?;
    let params = call.params.unwrap_or_else(|| json!({}));
    let timeout = Duration::from_millis(call.timeout_ms.unwrap_or(10_000).clamp(1, 300_000));
    let started = std::time::Instant::now();
    let outcome = client
        .call_value(service, method, params, Some(timeout))
        .await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(Json(match outcome {
        Ok(result) => json!({ "result": result, "elapsed_ms": elapsed_ms }),
        Err(CallError::Rpc(e)) => json!({ "error": e, "elapsed_ms": elapsed_ms }),
        Err(e) => json!({ "failure": e.to_string(), "elapsed_ms": elapsed_ms }),
    }))
}

/// Samples the overview every `interval` until `stop` fires.
async fn sample_loop(
    broker: Broker,
    options: Options,
    tx: watch::Sender<Arc<Overview>>,
    stop: CancellationToken,
    rediscover: Arc<AtomicBool>,
) {
    let mut sampler = Sampler::new(&options.prefix, options.alive_within, options.history)
        .discover_every(options.discover_every);
    let mut tick = tokio::time::interval(options.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        if rediscover.swap(false, Ordering::Relaxed) {
            sampler.rediscover();
        }
        let next = match broker.sample(&mut sampler).await {
            Ok(mut o) => {
                o.interval_s = options.interval.as_secs_f64();
                o
            }
            Err(e) => {
                tracing::warn!(error = %e, broker = broker.kind(), "dashboard: sampling the broker failed");
                let mut o = (**tx.borrow()).clone();
                o.error = Some(format!("reading {} failed: {e}", broker.kind()));
                o
            }
        };
        if tx.send(Arc::new(next)).is_err() {
            return;
        }
    }
}

/// The dashboard's routes on `broker` (and `client` for calls, `None` when read-only).
fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/services/{service}", get(page))
        .route("/assets/app.js", get(app_js))
        .route("/assets/style.css", get(style_css))
        .route("/api/overview", get(api_overview))
        .route("/api/events", get(api_events))
        .route("/api/services/{service}", get(api_service))
        .route("/api/services/{service}/events", get(api_service_events))
        .route(
            "/api/services/{service}/dead-letters/{action}",
            post(api_dead_letters),
        )
        .route("/api/call", post(api_call))
        .route("/login", get(login_form).post(login))
        .layer(middleware::from_fn_with_state(state.clone(), guard_token))
        .layer(middleware::from_fn_with_state(state.clone(), guard_host))
        .with_state(state)
}

/// Runs the dashboard until `shutdown` resolves. `on_listening` gets the bound address (the
/// port is chosen by the system when `listen` has port 0).
pub async fn serve(
    options: Options,
    broker: Broker,
    client: Option<AnyClient>,
    on_listening: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    let local = listener.local_addr()?;
    let (tx, rx) = watch::channel(Arc::new(Overview {
        broker: broker.kind(),
        prefix: options.prefix.clone(),
        ..Overview::default()
    }));
    let stop = CancellationToken::new();
    let rediscover = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn(sample_loop(
        broker.clone(),
        options.clone(),
        tx,
        stop.clone(),
        Arc::clone(&rediscover),
    ));
    let state = Arc::new(AppState {
        options,
        stop: stop.clone(),
        broker,
        client,
        overview: rx,
        csrf: random_token(),
        pages: std::sync::Mutex::default(),
        rediscover,
    });
    on_listening(local);
    let result = axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            // ends the sampler, which ends every event stream, so connections can close
            stop.cancel();
        })
        .await;
    sampler.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::{escape_attr, loopback_host, same_secret};

    #[test]
    fn loopback_names() {
        for ok in [
            "127.0.0.1:7474",
            "localhost:7474",
            "localhost",
            "[::1]:7474",
            "app.localhost:1",
        ] {
            assert!(loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example:7474",
            "127.0.0.1.evil.example",
            "",
            "10.0.0.1:7474",
            "[::2]:1",
        ] {
            assert!(!loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn secrets_and_escaping() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert_eq!(
            escape_attr(r#"<a "b">&'"#),
            "&lt;a &quot;b&quot;&gt;&amp;&#39;"
        );
    }
}
