//! `GET /{code}/qr`: a link's short URL as a QR code, read back by an independent decoder.

mod common;

use common::{client, expect_problem, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

/// Decodes a PNG (with the `png` crate) and reads its QR code (with `rqrr`).
fn read_qr(png_bytes: &[u8]) -> String {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    // One-bit greyscale comes out as one byte a pixel.
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a bounded image")];
    let frame = reader.next_frame(&mut pixels).expect("a frame");
    assert_eq!(frame.color_type, png::ColorType::Grayscale);
    let (width, height) = (frame.width as usize, frame.height as usize);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| pixels[y * width + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().expect("the QR code decodes").1
}

#[tokio::test]
async fn the_png_decodes_to_the_short_url() {
    let (app, _dir) = spawn_app().await;
    let link = app.create(json!({"target_url": "https://example.com/a-long/path?with=query"})).await;
    let code = link["code"].as_str().expect("code");
    let short_url = link["short_url"].as_str().expect("short url");

    // Public, like the redirect: no key.
    let response = client().get(app.url(&format!("/{code}/qr"))).send().await.expect("answered");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert!(response.headers()["cache-control"].to_str().expect("ascii").contains("max-age"));
    let png_bytes = response.bytes().await.expect("body");
    assert_eq!(read_qr(&png_bytes), short_url);

    // The asked size is the image's size; the code still reads at the smallest that fits it.
    for (size, margin) in [(120, 8), (1000, 0), (333, 50)] {
        let response = client()
            .get(app.url(&format!("/{code}/qr?format=png&size={size}&margin={margin}")))
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), StatusCode::OK, "size {size}, margin {margin}");
        let png_bytes = response.bytes().await.expect("body");
        let decoder = png::Decoder::new(std::io::Cursor::new(&png_bytes[..])).read_info().expect("a PNG");
        assert_eq!((decoder.info().width, decoder.info().height), (size, size));
        drop(decoder);
        if margin > 0 {
            assert_eq!(read_qr(&png_bytes), short_url, "size {size}, margin {margin}");
        }
    }
}

#[tokio::test]
async fn the_svg_is_an_svg_of_the_asked_size() {
    let (app, _dir) = spawn_app().await;
    let code = app.create_to("https://example.com/").await;
    let response = client().get(app.url(&format!("/{code}/qr?format=svg&size=240"))).send().await.expect("answered");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
    let svg = response.text().await.expect("text");
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"240\" height=\"240\""), "{svg}");
    assert!(svg.contains("<path fill=\"#000\" d=\"M") && svg.ends_with("</svg>"), "{svg}");
}

#[tokio::test]
async fn unknown_deleted_and_out_of_bounds_are_problems() {
    let (app, _dir) = spawn_app().await;
    let code = app.create_to("https://example.com/").await;
    let base = app.base.clone();
    let get = |path: String| {
        let url = format!("{base}{path}");
        async move { client().get(url).send().await.expect("answered") }
    };

    expect_problem(get("/no-such-code/qr".into()).await, StatusCode::NOT_FOUND).await;
    for (query, field) in
        [("size=49", "size"), ("size=1001", "size"), ("margin=201", "margin"), ("size=50&margin=20", "size")]
    {
        let problem = expect_problem(get(format!("/{code}/qr?{query}")).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(problem.to_string().contains(field), "{query}: {problem}");
    }
    for query in ["format=gif", "size=big", "colour=red"] {
        expect_problem(get(format!("/{code}/qr?{query}")).await, StatusCode::BAD_REQUEST).await;
    }

    assert_eq!(app.delete(&format!("/v1/links/{code}")).await.status(), StatusCode::NO_CONTENT);
    app.settled().await;
    expect_problem(get(format!("/{code}/qr")).await, StatusCode::GONE).await;
    // The request's own fault is answered first, whatever became of the link.
    expect_problem(get(format!("/{code}/qr?margin=201")).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    expect_problem(get("/no-such-code/qr?size=1001".into()).await, StatusCode::UNPROCESSABLE_ENTITY).await;
}
