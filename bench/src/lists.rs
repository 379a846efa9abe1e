//! Figures 5 to 7: the conversation list, its counts and search, against B4 (a bare
//! handler running the same list SQL and serializing the rows).
//!
//! Latencies are one client's back-to-back requests on a kept-alive connection (a rate far
//! below either server's maximum), each series the median of `runs` runs' percentiles.
//! Compressed series send `Accept-Encoding: gzip` and time the whole compressed body.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use domain::{InboxId, OrgId, UserId};
use persistence::Store;
use persistence::repo::conversation_list::{self, Filter, Scope, Sort, Tab};
use serde_json::{Value, json};

use crate::client::{Api, REQUEST_TIMEOUT};
use crate::report::{Figure, Latency, median};
use crate::target::{Scale, Target};

const PAGE: usize = 25;
/// Requests per series at most, and the time one series may take (slow searches stop
/// sooner, after at least `MIN_SAMPLES`), so the whole group stays within minutes.
const MAX_SAMPLES: usize = 400;
const SERIES_TIME: Duration = Duration::from_secs(4);
const MIN_SAMPLES: usize = 30;
/// The server's default pool size: B4 gets the same.
const POOL: u32 = 16;
/// Requests per statement-count reading. (Page 1 runs two more phases than a deep page: the
/// caller's pins and the conversations without messages; a deep page must never run more.)
const STATEMENT_PROBES: usize = 5;

/// One filtered list, as an agent's app asks for it.
struct Series {
    name: &'static str,
    query: String,
}

/// One client's view of one server: a list page by cursor, plain or compressed.
struct Lister<'a> {
    api: &'a Api,
    base: &'a str,
    token: &'a str,
}

impl Lister<'_> {
    async fn get(&self, path: &str, gzip: bool) -> Result<(Duration, Vec<u8>), String> {
        let url = format!("{}{path}", self.base);
        let mut request = self.api.http.get(&url).bearer_auth(self.token);
        if gzip {
            request = request.header("accept-encoding", "gzip");
        }
        let started = Instant::now();
        let response = request
            .send()
            .await
            .map_err(|error| format!("GET {url}: {error}"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|error| format!("GET {url}: reading the answer: {error}"))?;
        let elapsed = started.elapsed();
        if !status.is_success() {
            return Err(format!(
                "GET {url}: {status} {}",
                String::from_utf8_lossy(&body)
            ));
        }
        if gzip && !body.starts_with(&[0x1f, 0x8b]) {
            return Err(format!(
                "GET {url}: asked for gzip, got an uncompressed body"
            ));
        }
        Ok((elapsed, body.to_vec()))
    }

    async fn json(&self, path: &str) -> Result<Value, String> {
        let (_, body) = self.get(path, false).await?;
        serde_json::from_slice(&body).map_err(|error| format!("GET {path}: not JSON: {error}"))
    }

    /// `count` requests of `path` (fewer when [`SERIES_TIME`] is up, but at least
    /// [`MIN_SAMPLES`]); their latency percentiles.
    async fn series(&self, path: &str, gzip: bool, count: usize) -> Result<Latency, String> {
        let started = Instant::now();
        let mut samples = Vec::with_capacity(count);
        while samples.len() < count
            && (samples.len() < MIN_SAMPLES || started.elapsed() < SERIES_TIME)
        {
            samples.push(self.get(path, gzip).await?.0);
        }
        Ok(Latency::of(&mut samples))
    }

    /// The path of page `page` (1-based) of `query`, following cursors from page 1, and the
    /// page reached (fewer when the list ends sooner).
    async fn page_path(&self, query: &str, page: usize) -> Result<(String, usize), String> {
        let first = format!("/v1/conversations?{query}&limit={PAGE}");
        let mut path = first.clone();
        let mut reached = 1;
        while reached < page {
            let body = self.json(&path).await?;
            let Some(cursor) = body["next_cursor"].as_str() else {
                break;
            };
            path = format!("{first}&cursor={cursor}");
            reached += 1;
        }
        Ok((path, reached))
    }

    /// SQL statements per request of `path`, from the server's own counter.
    async fn statements(&self, path: &str) -> Result<f64, String> {
        let counter = "switchboard_db_queries_total";
        let before = self.api.metric(self.base, counter).await?;
        for _ in 0..STATEMENT_PROBES {
            self.get(path, false).await?;
        }
        let after = self.api.metric(self.base, counter).await?;
        Ok((after - before) / STATEMENT_PROBES as f64)
    }
}

/// The median over runs of each percentile.
fn median_of(runs: &[Latency]) -> Latency {
    let pick = |get: fn(&Latency) -> f64| median(&mut runs.iter().map(get).collect::<Vec<_>>());
    Latency {
        p50: pick(|latency| latency.p50),
        p95: pick(|latency| latency.p95),
        p99: pick(|latency| latency.p99),
        count: runs.iter().map(|latency| latency.count).sum(),
    }
}

/// The list, counts and search figures of one setup.
pub async fn figures(target: &Target, scale: &Scale) -> Result<Vec<Figure>, String> {
    let api = Api::new()?;
    let admin = target
        .account("admin")
        .ok_or("the seeded organization has no admin")?;
    let lister = Lister {
        api: &api,
        base: target.url(),
        token: &admin.access_token,
    };
    let backend = target.backend.as_str();
    let inbox = target
        .inboxes
        .iter()
        .max_by_key(|inbox| inbox.open)
        .ok_or("the seeded organization has no inbox")?;
    let series = [
        Series {
            name: "inbox",
            query: format!("status=closed&inbox_id={}", inbox.id),
        },
        Series {
            name: "status",
            query: "status=open".into(),
        },
        Series {
            name: "assignee",
            query: "status=closed&assignee=others".into(),
        },
        Series {
            name: "unread",
            query: "status=open&unread=true".into(),
        },
    ];
    let samples = scale.samples.clamp(MIN_SAMPLES, MAX_SAMPLES);
    let runs = scale.runs.max(1);
    let mut figures = Vec::new();
    let mut open_page_one = None;
    let mut inbox_page_one = None;
    for one in &series {
        let (first, _) = lister.page_path(&one.query, 1).await?;
        let (deep, reached) = lister.page_path(&one.query, scale.deep_page).await?;
        let mut measured: [Vec<Latency>; 4] = Default::default();
        for _ in 0..runs {
            for (index, (path, gzip)) in [
                (&first, false),
                (&deep, false),
                (&first, true),
                (&deep, true),
            ]
            .into_iter()
            .enumerate()
            {
                measured[index].push(lister.series(path, gzip, samples).await?);
            }
        }
        let [page_one, deep_plain, page_one_gzip, deep_gzip] =
            measured.map(|runs| median_of(&runs));
        let name = |rest: &str| format!("list.{backend}.{}.{rest}", one.name);
        figures.push(Figure::reference(name("page1.p99"), page_one.p99, "ms"));
        figures.push(Figure::at_most(
            name("deep.p99"),
            deep_plain.p99,
            "ms",
            (&format!("page 1 p99 (deep = page {reached})"), page_one.p99),
            1.2,
        ));
        figures.push(Figure::at_most(
            name("page1.gzip.p50"),
            page_one_gzip.p50,
            "ms",
            ("uncompressed p50", page_one.p50),
            1.2,
        ));
        figures.push(Figure::at_most(
            name("deep.gzip.p50"),
            deep_gzip.p50,
            "ms",
            ("uncompressed p50", deep_plain.p50),
            1.2,
        ));
        let statements_first = lister.statements(&first).await?;
        let statements_deep = lister.statements(&deep).await?;
        figures.push(Figure::absolute(
            name("deep.statements"),
            statements_deep,
            "statements",
            &format!("≤ page 1 ({statements_first:.1})"),
            statements_deep <= statements_first + 0.5,
        ));
        match one.name {
            "status" => open_page_one = Some(page_one),
            "inbox" => inbox_page_one = Some(page_one),
            _ => {}
        }
    }

    // B4: the same list SQL (the inbox series' page 1), serialized, behind a bare handler.
    if let Some(page_one) = inbox_page_one {
        let b4 = Bare::start(target, admin.id, inbox.id)?;
        let bare = Lister {
            api: &api,
            base: &b4.base,
            token: "",
        };
        let mut runs_b4 = Vec::new();
        for _ in 0..runs {
            runs_b4.push(bare.series("/list", false, samples).await?);
        }
        let baseline = median_of(&runs_b4);
        b4.stop().await;
        figures.push(Figure::reference(
            format!("baseline.{backend}.b4.p99"),
            baseline.p99,
            "ms",
        ));
        figures.push(Figure::at_most(
            format!("list.{backend}.inbox.page1.vs_b4"),
            page_one.p99,
            "ms",
            ("B4 bare list handler p99", baseline.p99),
            2.0,
        ));
    }

    let list_page = open_page_one.ok_or("the open list was not measured")?;
    let list_baseline = ("list page 1 p99 (open)", list_page.p99);

    // 6: the counts behind the tabs, as every app asks on each refresh.
    let mut counts = Vec::new();
    for _ in 0..runs {
        counts.push(
            lister
                .series("/v1/conversations/counts", false, samples)
                .await?,
        );
    }
    figures.push(Figure::at_most(
        format!("counts.{backend}.p99"),
        median_of(&counts).p99,
        "ms",
        list_baseline,
        3.0,
    ));

    // 7: search by a customer's name, number, e-mail and a word of a message.
    for (what, path) in search_paths(&lister).await? {
        let mut found = Vec::new();
        for _ in 0..runs {
            found.push(lister.series(&path, false, samples).await?);
        }
        figures.push(Figure::at_most(
            format!("search.{backend}.{what}.p99"),
            median_of(&found).p99,
            "ms",
            list_baseline,
            5.0,
        ));
    }
    Ok(figures)
}

/// Searches that find something: terms taken from a seeded contact and a message.
async fn search_paths(lister: &Lister<'_>) -> Result<Vec<(&'static str, String)>, String> {
    let contacts = lister.json("/v1/contacts?limit=25").await?;
    let contact = contacts["items"]
        .as_array()
        .and_then(|items| {
            items.iter().find(|contact| {
                contact["name"].is_string()
                    && contact["email"].is_string()
                    && contact["phone_numbers"][0].is_string()
            })
        })
        .ok_or("no seeded contact with a name, an e-mail and a number")?;
    let word = |text: &str| {
        text.split(|c: char| !c.is_alphanumeric())
            .max_by_key(|word| word.len())
            .unwrap_or_default()
            .to_lowercase()
    };
    let surname = contact["name"]
        .as_str()
        .and_then(|name| name.split_whitespace().last())
        .unwrap_or_default()
        .to_string();
    let email = contact["email"].as_str().unwrap_or_default().to_string();
    let digits: String = contact["phone_numbers"][0]
        .as_str()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let number = digits[digits.len().saturating_sub(6)..].to_string();
    let conversations = lister.json("/v1/conversations?status=open&limit=1").await?;
    let conversation = conversations["items"][0]["id"]
        .as_i64()
        .ok_or("no open conversation to take a message from")?;
    let messages = lister
        .json(&format!(
            "/v1/conversations/{conversation}/messages?limit=25"
        ))
        .await?;
    let text = messages["items"]
        .as_array()
        .and_then(|items| items.iter().find_map(|message| message["body"].as_str()))
        .map(word)
        .filter(|word| word.len() >= 4)
        .ok_or("no message text to search for")?;
    let encode = |value: &str| -> String {
        value
            .bytes()
            .map(|byte| match byte {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (byte as char).to_string()
                }
                _ => format!("%{byte:02X}"),
            })
            .collect()
    };
    let list = |q: &str| {
        format!(
            "/v1/conversations?status=closed&limit={PAGE}&q={}",
            encode(q)
        )
    };
    Ok(vec![
        ("name", list(&surname)),
        ("number", list(&number)),
        (
            "email",
            format!("/v1/contacts?limit={PAGE}&q={}", encode(&email)),
        ),
        ("message", list(&text)),
    ])
}

/// B4: `conversation_list::list` for one inbox's closed tab (the admin's scope) through a
/// pool like the server's, its rows serialized, behind one bare actix-web route `/list`.
struct Bare {
    base: String,
    handle: actix_web::dev::ServerHandle,
    thread: std::thread::JoinHandle<()>,
}

struct BareList {
    store: Store,
    scope: Scope,
    filter: Filter,
}

async fn bare_list(state: web::Data<BareList>) -> HttpResponse {
    let state = state.into_inner();
    let page = web::block(move || {
        state.store.read(|conn| {
            conversation_list::list(
                conn,
                &state.scope,
                &state.filter,
                Sort::RecentMessages,
                None,
                PAGE as i64,
            )
        })
    })
    .await;
    match page {
        Ok(Ok(page)) => {
            let items: Vec<Value> = page
                .items
                .iter()
                .map(|c| {
                    json!({
                        "id": c.id.get(), "inbox_id": c.inbox_id.get(),
                        "channel_id": c.channel_id.get(), "contact_id": c.contact_id.get(),
                        "status": c.status.as_str(), "archived": c.archived,
                        "assignee_id": c.assignee_id.map(|id| id.get()),
                        "last_message_at": c.last_message_at,
                        "last_message_preview": c.last_message_preview,
                        "message_count": c.message_count, "created_at": c.created_at,
                        "closed_at": c.closed_at,
                    })
                })
                .collect();
            HttpResponse::Ok().json(json!({ "items": items, "next_cursor": null }))
        }
        Ok(Err(error)) => HttpResponse::InternalServerError().body(error.to_string()),
        Err(error) => HttpResponse::InternalServerError().body(error.to_string()),
    }
}

impl Bare {
    fn start(target: &Target, admin: i64, inbox: i64) -> Result<Bare, String> {
        let store = Store::open(&target.database_url, POOL)
            .map_err(|error| format!("B4: opening the database: {error}"))?;
        let state = web::Data::new(BareList {
            store,
            scope: Scope {
                user: UserId(admin),
                full: target
                    .inboxes
                    .iter()
                    .map(|inbox| InboxId(inbox.id))
                    .collect(),
                partial: Vec::new(),
                teams: Vec::new(),
            },
            filter: Filter {
                org: Some(OrgId(target.org_id)),
                tab: Some(Tab::Closed),
                inbox_id: Some(InboxId(inbox)),
                ..Filter::default()
            },
        });
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|error| format!("B4: binding: {error}"))?;
        let base = format!(
            "http://{}",
            listener
                .local_addr()
                .map_err(|error| format!("B4: {error}"))?
        );
        let (sender, receiver) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(state.clone())
                        .route("/list", web::get().to(bare_list))
                })
                .workers(2)
                .disable_signals()
                .listen(listener);
                match server {
                    Ok(server) => {
                        let server = server.run();
                        let _ = sender.send(Ok(server.handle()));
                        let _ = server.await;
                    }
                    Err(error) => {
                        let _ = sender.send(Err(format!("B4: {error}")));
                    }
                }
            });
        });
        let handle = receiver
            .recv_timeout(REQUEST_TIMEOUT)
            .map_err(|_| "B4 did not start".to_string())??;
        Ok(Bare {
            base,
            handle,
            thread,
        })
    }

    async fn stop(self) {
        self.handle.stop(true).await;
        let _ = tokio::task::spawn_blocking(move || self.thread.join()).await;
    }
}
