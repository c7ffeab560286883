//! Moving many links: `import` (CSV or NDJSON, in batches, with a progress bar), `export` (the
//! server's stream to a file) and the offline `rebuild` of the read models.

use std::io::{BufRead, Read, Write};
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Client, checked};
use super::{ExportArgs, Format, ImportArgs};
use kurz_service_kit::link_transfer::{Record, create_body, csv_record};

fn format_of(args: &ImportArgs) -> Format {
    args.format.unwrap_or_else(|| match args.file.extension().and_then(|e| e.to_str()) {
        Some("ndjson" | "jsonl") => Format::Ndjson,
        _ => Format::Csv,
    })
}

/// Batches an import keeps in flight.
const IN_FLIGHT: usize = 4;

/// Counts of an import.
#[derive(Debug, Default)]
struct Tally {
    created: u64,
    failed: u64,
    skipped: u64,
}

pub async fn import(client: &Client, args: &ImportArgs) -> anyhow::Result<()> {
    anyhow::ensure!((1..=1000).contains(&args.batch), "--batch must be from 1 to 1000");
    let stdin = args.file.as_os_str() == "-";
    let (input, size): (Box<dyn Read>, Option<u64>) = if stdin {
        (Box::new(std::io::stdin()), None)
    } else {
        let file = std::fs::File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
        let size = file.metadata().map(|m| m.len()).ok();
        (Box::new(file), size)
    };
    let bar = match size {
        Some(size) => ProgressBar::new(size).with_style(
            ProgressStyle::with_template("{bar:40} {percent:>3}% {bytes}/{total_bytes} {elapsed} {msg}")
                .expect("a valid template"),
        ),
        None => ProgressBar::new_spinner(),
    };
    let reader = std::io::BufReader::new(bar.wrap_read(input));
    let mut records: Box<dyn Iterator<Item = anyhow::Result<Record>>> = match format_of(args) {
        Format::Csv => {
            let mut csv = csv::Reader::from_reader(reader);
            let headers = csv.headers().context("reading the CSV header")?.clone();
            Box::new(csv.into_records().map(move |row| csv_record(&headers, &row.context("reading a CSV row")?)))
        }
        Format::Ndjson => {
            Box::new(reader.lines().filter(|line| !matches!(line, Ok(l) if l.trim().is_empty())).map(|line| {
                let line = line.context("reading a line")?;
                serde_json::from_str::<Record>(&line).context("a line is not a JSON object")
            }))
        }
    };
    let mut tally = Tally::default();
    let mut number = 0_u64;
    loop {
        // Up to IN_FLIGHT batches of (record number, body), sent side by side: one batch at a
        // time leaves the server waiting on the round trip and on this reader.
        let mut batches: Vec<Vec<(u64, Value)>> = Vec::with_capacity(IN_FLIGHT);
        while batches.len() < IN_FLIGHT {
            let mut batch = Vec::with_capacity(args.batch);
            for record in records.by_ref() {
                number += 1;
                match create_body(&record.with_context(|| format!("record {number}"))?) {
                    Some(body) => batch.push((number, body)),
                    None => tally.skipped += 1,
                }
                if batch.len() == args.batch {
                    break;
                }
            }
            if batch.is_empty() {
                break;
            }
            batches.push(batch);
        }
        if batches.is_empty() {
            break;
        }
        let sends = batches.iter().map(|batch| {
            let links: Vec<&Value> = batch.iter().map(|(_, body)| body).collect();
            send_batch(client, json!({ "links": links }), &bar)
        });
        let answers = futures_util::future::try_join_all(sends).await?;
        for (batch, answer) in batches.iter().zip(answers) {
            let results = answer["results"].as_array().context("a batch answer without results")?;
            for ((number, _), result) in batch.iter().zip(results) {
                if result["status"] == 201 {
                    tally.created += 1;
                } else {
                    tally.failed += 1;
                    let problem = &result["problem"];
                    let field = problem["field"].as_str().unwrap_or("");
                    let detail = problem["detail"].as_str().unwrap_or("");
                    bar.println(format!("record {number}: {} {field} {detail}", result["status"]));
                }
            }
        }
        bar.set_message(format!("{} created, {} failed", tally.created, tally.failed));
    }
    bar.finish_and_clear();
    eprintln!("{} created, {} failed, {} deleted links skipped", tally.created, tally.failed, tally.skipped);
    anyhow::ensure!(tally.failed == 0, "{} links were not imported (see above)", tally.failed);
    Ok(())
}

/// Sends one batch; over the key's write limit (429, nothing created), waits as long as the
/// server's `Retry-After` says and sends it again.
async fn send_batch(client: &Client, body: Value, bar: &ProgressBar) -> anyhow::Result<Value> {
    loop {
        let response = client.request(Method::POST, "/v1/links/batch").json(&body).send().await?;
        if response.status() != reqwest::StatusCode::TOO_MANY_REQUESTS {
            return checked(response).await?.json().await.context("reading Kurz's answer");
        }
        let wait = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
            .unwrap_or(1);
        bar.set_message(format!("over the write limit; waiting {wait} s"));
        tokio::time::sleep(Duration::from_secs(wait.clamp(1, 60))).await;
    }
}

pub async fn export(client: &Client, args: &ExportArgs) -> anyhow::Result<()> {
    let format = match args.format {
        Format::Csv => "csv",
        Format::Ndjson => "ndjson",
    };
    let mut query = args.filters.query();
    query.push(("format", format.to_owned()));
    let mut response = checked(client.request(Method::GET, "/v1/links/export").query(&query).send().await?).await?;
    let mut output: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let bar = ProgressBar::new_spinner()
        .with_style(ProgressStyle::with_template("{spinner} {bytes} {elapsed} {msg}").expect("a valid template"));
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut lines = 0_u64;
    while let Some(chunk) = response.chunk().await.context("reading the export (cut short?)")? {
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        output.write_all(&chunk)?;
        bar.inc(chunk.len() as u64);
    }
    output.flush()?;
    bar.finish_and_clear();
    let header = u64::from(args.format == Format::Csv);
    eprintln!("{} links exported", lines.saturating_sub(header));
    Ok(())
}

/// Deletes the read models of the configured data directory and folds them again from the log,
/// showing how far it got. Run it while `kurz` is stopped: the files belong to one process.
pub async fn rebuild() -> anyhow::Result<()> {
    kurz_service_kit::memory::prefer_small_pages();
    let config: crate::Config = kurz_service_kit::config::load()?;
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{bar:40} {percent:>3}% {pos}/{len} records {elapsed} (eta {eta})")
            .expect("a valid template"),
    );
    let applied = crate::rebuild(&config, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await?;
    bar.finish_and_clear();
    eprintln!("read models rebuilt: {applied} records folded in {:.1} s", bar.elapsed().as_secs_f64());
    Ok(())
}
