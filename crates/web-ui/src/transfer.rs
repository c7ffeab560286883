//! Many links at once: importing a CSV file (created in batches through the API, with a result per
//! row streamed back as it comes, so the page shows progress) and exporting them.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kurz_service_kit::Problem;
use kurz_service_kit::link_transfer::{create_body, csv_record};
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::Ui;
use crate::guard::SignedIn;
use crate::links::encode_query;
use crate::page::{self, Page, Stop};
use crate::upstream::Client;

/// The largest file the import takes (as `POST /v1/links/batch`'s body limit).
pub const MAX_IMPORT_BYTES: usize = 8 << 20;
/// Rows per API batch: small enough that progress moves, large enough to cost few round trips.
const ROWS_PER_BATCH: usize = 100;
/// Rows per file; more is refused before anything is created.
const MAX_ROWS: usize = 100_000;
const CSRF_HEADER: &str = "x-csrf-token";

pub async fn page(signed_in: SignedIn) -> Response {
    let body = html! {
        section.card aria-labelledby="import-heading" {
            h2 #import-heading { "Import a CSV file" }
            p.hint #file-hint {
                "A header row, then one link per row: " code { "target_url" } " is required; "
                code { "code" } " (the alias), " code { "expires_at" } ", " code { "max_clicks" } ", "
                code { "redirect_status" } ", " code { "tags" } " (a JSON list), " code { "forward_query" }
                " and the other columns of an export are taken too. At most 8 MiB."
            }
            form #import method="post" action="/ui/import" data-csrf=(signed_in.session.csrf) {
                div.field {
                    label for="file" { "CSV file" }
                    input #file type="file" name="file" accept=".csv,text/csv" required aria-describedby="file-hint";
                }
                button type="submit" { "Import" }
            }
            noscript { p.error { "Importing here needs JavaScript; without it, use " code { "kurz import" } "." } }
            div #import-progress hidden {
                label for="import-bar" { "Progress" }
                progress #import-bar value="0" max="1" {}
                p #import-summary role="status" aria-live="polite" {}
                table #import-results {
                    caption { "Result per row" }
                    thead { tr { th scope="col" { "Row" } th scope="col" { "Result" } th scope="col" { "Short link or reason" } } }
                    tbody {}
                }
            }
        }
        section.card aria-labelledby="export-heading" {
            h2 #export-heading { "Export" }
            p { "Every link you can see, deleted ones included, in the format the import reads: "
                a href="/ui/export?format=csv" download="links.csv" { "CSV" } ", "
                a href="/ui/export?format=ndjson" download="links.ndjson" { "NDJSON" } "." }
        }
    };
    page::render(StatusCode::OK, "Import and export", signed_in.nav(), body)
}

/// One line of the import's answer (NDJSON): the number of rows first, then a line per row, then
/// the totals.
fn line(value: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(value).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

pub async fn run(State(ui): State<Ui>, signed_in: SignedIn, headers: HeaderMap, body: Bytes) -> Page {
    let token = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    signed_in.check(token)?;
    let rows = parse(&body).map_err(|reason| {
        Stop::from(
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-file", "The file cannot be imported", reason)
                .into_response(),
        )
    })?;
    let (sender, receiver) = mpsc::channel::<Bytes>(16);
    let SignedIn { session, client, .. } = signed_in;
    tokio::spawn(async move {
        let _ = sender.send(line(&json!({ "rows": rows.len() }))).await;
        let (mut created, mut refused) = (0_u64, 0_u64);
        for (first, chunk) in (0..).step_by(ROWS_PER_BATCH).zip(rows.chunks(ROWS_PER_BATCH)) {
            let results = create(&ui, &client, &session.key, chunk).await;
            for (index, mut result) in (first + 1..).zip(results) {
                // `links[3].target_url` names the batch's row; the person knows the file's.
                if let Some(field) = result["problem"]["field"].as_str().and_then(|f| f.split_once("].")) {
                    result["problem"]["field"] = json!(field.1);
                }
                if result["status"] == 201 {
                    created += 1;
                } else {
                    refused += 1;
                }
                result["row"] = json!(index);
                // The browser stopped reading (page closed): nothing more to tell; links already
                // created stay created, as with a batch cut short.
                if sender.send(line(&result)).await.is_err() {
                    return;
                }
            }
        }
        let _ = sender.send(line(&json!({ "done": true, "created": created, "refused": refused }))).await;
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|bytes| (Ok::<_, Infallible>(bytes), receiver))
    });
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    Ok(response)
}

/// Each row's create body, or why the row cannot be one.
fn parse(file: &[u8]) -> Result<Vec<Result<Value, String>>, String> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
    let headers = reader.headers().map_err(|e| format!("the header row cannot be read: {e}"))?.clone();
    if !headers.iter().any(|name| name == "target_url") {
        return Err("the header row has no `target_url` column".into());
    }
    let mut rows = Vec::new();
    for row in reader.records() {
        if rows.len() == MAX_ROWS {
            return Err(format!("more than {MAX_ROWS} rows: split the file"));
        }
        let body = row
            .map_err(|e| e.to_string())
            .and_then(|row| csv_record(&headers, &row).map_err(|e| format!("{e:#}")))
            .and_then(|record| create_body(&record).ok_or_else(|| "a deleted link (not imported)".to_owned()));
        rows.push(body);
    }
    Ok(rows)
}

/// The API's result for each row of `chunk` (rows that did not parse are refused here, as 422).
async fn create(ui: &Ui, client: &Client, key: &str, chunk: &[Result<Value, String>]) -> Vec<Value> {
    let links: Vec<&Value> = chunk.iter().filter_map(|row| row.as_ref().ok()).collect();
    let mut answers = if links.is_empty() {
        Vec::new()
    } else {
        let body = json!({ "links": links });
        match ui.upstream.call(client, key, Method::POST, "/v1/links/batch", Some(&body)).await {
            Ok(answer) if answer.is_success() => {
                answer.json::<Value>().ok().and_then(|v| v["results"].as_array().cloned()).unwrap_or_default()
            }
            Ok(answer) => {
                let problem = answer.problem();
                let refusal = json!({"status": answer.status.as_u16(), "problem": {"detail": problem.detail, "title": problem.title}});
                vec![refusal; links.len()]
            }
            Err(failure) => vec![json!({"status": 502, "problem": {"detail": failure.to_string()}}); links.len()],
        }
    }
    .into_iter();
    chunk
        .iter()
        .map(|row| match row {
            Ok(_) => answers.next().unwrap_or_else(|| json!({"status": 502, "problem": {"detail": "no answer"}})),
            Err(reason) => json!({"status": 422, "problem": {"detail": reason}}),
        })
        .collect()
}

#[derive(Debug, Deserialize)]
pub struct ExportParams {
    #[serde(default)]
    format: String,
}

/// The API's export, passed through as it streams (memory stays flat at any size).
pub async fn export(State(ui): State<Ui>, signed_in: SignedIn, Query(params): Query<ExportParams>) -> Page {
    let (format, name) = if params.format == "ndjson" { ("ndjson", "links.ndjson") } else { ("csv", "links.csv") };
    let path = format!("/v1/links/export?{}", encode_query(&[("format", format), ("state", "all")]));
    let mut response = ui.upstream.stream(&signed_in.client, &signed_in.session.key, &path).await?;
    if !response.status().is_success() {
        return Err(page::error(response.status(), "Export failed", "The export could not be made; try again.").into());
    }
    let disposition = HeaderValue::try_from(format!("attachment; filename=\"{name}\"")).expect("a header-safe name");
    response.headers_mut().insert(header::CONTENT_DISPOSITION, disposition);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_that_cannot_be_links_are_told_apart_from_the_rest() {
        let file = "target_url,code,max_clicks,tags,state\n\
                    https://example.com/a,aaa,5,\"[\"\"x\"\"]\",active\n\
                    https://example.com/b,bbb,many,,active\n\
                    https://example.com/c,ccc,,,deleted\n";
        let rows = parse(file.as_bytes()).expect("a CSV file");
        assert_eq!(
            rows[0].as_ref().expect("a link"),
            &json!({"target_url": "https://example.com/a", "alias": "aaa", "max_clicks": 5, "tags": ["x"]})
        );
        assert!(rows[1].as_ref().expect_err("not a number").contains("max_clicks"));
        assert!(rows[2].as_ref().expect_err("deleted").contains("deleted"));
        assert!(parse(b"code\nabc\n").expect_err("no target column").contains("target_url"));
    }
}
