//! What each client command sends, and how its answer is printed.

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::client::Client;
use super::{Command, Connection, CreateArgs, KeysCommand, LinksCommand, ListArgs, UpdateArgs, transfer};

/// Runs a client command (not `serve`).
pub async fn run(command: Command, connection: &Connection) -> anyhow::Result<()> {
    if let Command::Rebuild = command {
        return transfer::rebuild().await;
    }
    let client = Client::connect(connection)?;
    let json = connection.json;
    match command {
        Command::Serve | Command::Rebuild => unreachable!("handled by the caller and above"),
        Command::Links(links) => run_links(&client, links, json).await,
        Command::Keys(keys) => run_keys(&client, keys, json).await,
        Command::Import(args) => transfer::import(&client, &args).await,
        Command::Export(args) => transfer::export(&client, &args).await,
        Command::Orphans { from, to } => {
            let query: Vec<(&str, String)> =
                [("from", from), ("to", to)].into_iter().filter_map(|(name, value)| Some((name, value?))).collect();
            let orphans = client.send(client.request(Method::GET, "/v1/orphan-visits").query(&query)).await?;
            if json {
                println!("{orphans}");
            } else {
                println!("{} to {}: {} orphan visits", orphans["from"], orphans["to"], orphans["visits"]);
                table(&["REASON", "VISITS"], &rows(&orphans["reasons"], &["name", "visits"]));
                table(&["CODE TRIED", "VISITS"], &rows(&orphans["codes"], &["name", "visits"]));
                table(&["REFERRER", "VISITS"], &rows(&orphans["referrers"], &["name", "visits"]));
            }
            Ok(())
        }
        Command::Stats { range, owner } => {
            let mut query = range.query();
            query.extend(owner.map(|owner| ("owner", owner)));
            let overview = client.send(client.request(Method::GET, "/v1/stats").query(&query)).await?;
            if json {
                println!("{overview}");
            } else {
                let whose = overview["owner"].as_str().map_or_else(|| "every owner".to_owned(), str::to_owned);
                print_clicks(&format!("{whose}, links {}", overview["links"]), &overview);
                table(&["TOP LINK", "CLICKS"], &rows(&overview["top_links"], &["code", "clicks"]));
            }
            Ok(())
        }
    }
}

/// A stats answer's totals, and its clicks by day (or by hour, when it has them).
fn print_clicks(what: &str, stats: &Value) {
    println!(
        "{what}: {} clicks, {} unique visitors ({} clicks by bots)",
        stats["total_clicks"], stats["unique_visitors"], stats["bot_clicks"]
    );
    if stats.get("clicks_by_hour").is_some() {
        table(&["HOUR", "CLICKS"], &rows(&stats["clicks_by_hour"], &["hour", "clicks"]));
    } else {
        table(&["DATE", "CLICKS"], &rows(&stats["clicks_by_day"], &["date", "clicks"]));
    }
}

async fn run_links(client: &Client, command: LinksCommand, json: bool) -> anyhow::Result<()> {
    match command {
        LinksCommand::Create(args) => {
            let link = client.send(client.request(Method::POST, "/v1/links").json(&create_body(&args))).await?;
            print_link(&link, json);
        }
        LinksCommand::List(args) => list(client, &args, json).await?,
        LinksCommand::Get { code } => {
            let link = client.send(client.request(Method::GET, &format!("/v1/links/{code}"))).await?;
            print_link(&link, json);
        }
        LinksCommand::Update(args) => {
            let path = format!("/v1/links/{}", args.code);
            let link = client.send(client.request(Method::PATCH, &path).json(&update_body(&args))).await?;
            print_link(&link, json);
        }
        LinksCommand::Delete { code } => {
            client.send(client.request(Method::DELETE, &format!("/v1/links/{code}"))).await?;
            if !json {
                println!("deleted {code}");
            }
        }
        LinksCommand::Stats { code, range } => {
            let request = client.request(Method::GET, &format!("/v1/links/{code}/stats")).query(&range.query());
            let stats = client.send(request).await?;
            if json {
                println!("{stats}");
            } else {
                print_clicks(&code, &stats);
            }
        }
        LinksCommand::History { code } => history(client, &code, json).await?,
    }
    Ok(())
}

fn create_body(args: &CreateArgs) -> Value {
    let mut body = Map::new();
    body.insert("target_url".into(), json!(args.target_url));
    let optional = [
        ("alias", args.alias.as_ref().map(|v| json!(v))),
        ("expires_at", args.expires_at.as_ref().map(|v| json!(v))),
        ("max_clicks", args.max_clicks.map(|v| json!(v))),
        ("redirect_status", args.redirect_status.map(|v| json!(v))),
        ("owner", args.owner.as_ref().map(|v| json!(v))),
        ("tags", (!args.tags.is_empty()).then(|| json!(args.tags))),
        ("forward_query", args.forward_query.then_some(json!(true))),
    ];
    body.extend(optional.into_iter().filter_map(|(name, value)| Some((name.to_owned(), value?))));
    Value::Object(body)
}

fn update_body(args: &UpdateArgs) -> Value {
    let mut body = Map::new();
    let optional = [
        ("target_url", args.target_url.as_ref().map(|v| json!(v))),
        ("tags", args.tags.as_ref().map(|v| json!(v))),
        ("expires_at", args.expires_at.as_ref().map(|v| json!(v))),
        ("max_clicks", args.max_clicks.map(|v| json!(v))),
        ("enabled", (args.disable || args.enable).then_some(json!(args.enable))),
        ("disabled_reason", args.reason.as_ref().map(|v| json!(v))),
    ];
    body.extend(optional.into_iter().filter_map(|(name, value)| Some((name.to_owned(), value?))));
    Value::Object(body)
}

async fn list(client: &Client, args: &ListArgs, json: bool) -> anyhow::Result<()> {
    let mut cursor = args.cursor.clone();
    let mut shown = Vec::new();
    loop {
        let mut query = args.filters.query();
        query.push(("limit", args.limit.to_string()));
        query.extend(cursor.clone().map(|cursor| ("cursor", cursor)));
        let page = client.send(client.request(Method::GET, "/v1/links").query(&query)).await?;
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if json && !args.all {
            println!("{page}");
            return Ok(());
        }
        shown.extend(page["items"].as_array().cloned().unwrap_or_default());
        if !args.all || cursor.is_none() {
            break;
        }
    }
    if json {
        for link in &shown {
            println!("{link}");
        }
        return Ok(());
    }
    table(
        &["CODE", "TARGET", "STATE", "OWNER", "CREATED"],
        &rows(&Value::Array(shown), &["code", "target_url", "state", "owner", "created_at"]),
    );
    if let Some(cursor) = cursor.filter(|_| !args.all) {
        println!("more: --cursor {cursor}");
    }
    Ok(())
}

async fn history(client: &Client, code: &str, json: bool) -> anyhow::Result<()> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = client.request(Method::GET, &format!("/v1/links/{code}/history")).query(&[("limit", "1000")]);
        if let Some(cursor) = &cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        let page = client.send(request).await?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    if json {
        println!("{}", json!({"code": code, "items": items}));
        return Ok(());
    }
    let lines: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            let changes = item["changes"].as_object().map(|changes| {
                changes.iter().map(|(field, value)| format!("{field}={value}")).collect::<Vec<_>>().join(" ")
            });
            vec![text(&item["at"]), text(&item["event"]), text(&item["key_id"]), changes.unwrap_or_default()]
        })
        .collect();
    table(&["AT", "EVENT", "KEY", "CHANGES"], &lines);
    Ok(())
}

async fn run_keys(client: &Client, command: KeysCommand, json: bool) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create { owner, role } => {
            let body = json!({"owner": owner, "role": role});
            let key = client.send(client.request(Method::POST, "/v1/keys").json(&body)).await?;
            if json {
                println!("{key}");
            } else {
                println!(
                    "id:    {}\nowner: {}\nrole:  {}\nkey:   {}",
                    text(&key["id"]),
                    text(&key["owner"]),
                    text(&key["role"]),
                    text(&key["key"])
                );
                eprintln!("The key is shown this once; store it now.");
            }
        }
        KeysCommand::List => {
            let keys = client.send(client.request(Method::GET, "/v1/keys")).await?;
            if json {
                println!("{keys}");
            } else {
                table(
                    &["ID", "OWNER", "ROLE", "CREATED", "REVOKED"],
                    &rows(&keys["items"], &["id", "owner", "role", "created_at", "revoked_at"]),
                );
            }
        }
        KeysCommand::Revoke { id } => {
            client.send(client.request(Method::DELETE, &format!("/v1/keys/{id}"))).await?;
            if !json {
                println!("revoked {id}");
            }
        }
    }
    Ok(())
}

fn print_link(link: &Value, json: bool) {
    if json {
        println!("{link}");
        return;
    }
    let fields = [
        "code",
        "short_url",
        "target_url",
        "owner",
        "enabled",
        "disabled_reason",
        "created_at",
        "updated_at",
        "expires_at",
        "max_clicks",
        "redirect_status",
        "forward_query",
        "tags",
        "metadata",
    ];
    let lines: Vec<Vec<String>> = fields.iter().map(|field| vec![(*field).to_owned(), text(&link[*field])]).collect();
    table(&[], &lines);
}

/// A JSON value as a table cell: strings bare, nothing for null.
fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn rows(items: &Value, fields: &[&str]) -> Vec<Vec<String>> {
    items
        .as_array()
        .map(|items| items.iter().map(|item| fields.iter().map(|field| text(&item[*field])).collect()).collect())
        .unwrap_or_default()
}

/// Columns padded to their widest cell (the last column is not padded).
fn table(header: &[&str], lines: &[Vec<String>]) {
    let columns = header.len().max(lines.first().map_or(0, Vec::len));
    let mut widths = vec![0; columns];
    let all = std::iter::once(header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>()).chain(lines.iter().cloned());
    for line in all.clone() {
        for (width, cell) in widths.iter_mut().zip(&line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for line in all.filter(|line| !line.is_empty()) {
        let cells: Vec<String> = line
            .iter()
            .enumerate()
            .map(
                |(i, cell)| {
                    if i + 1 == line.len() { cell.clone() } else { format!("{cell:<width$}", width = widths[i]) }
                },
            )
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}
