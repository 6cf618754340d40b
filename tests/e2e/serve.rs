//! `rootcause serve`: start with nothing configured, change the topology over HTTP, get precise
//! errors, read metrics and the OpenAPI document, stop cleanly on SIGTERM, and find everything
//! again after a restart, on SQLite and on PostgreSQL.

use std::time::Duration;

use rootcause_e2e::{Server, ServerOptions, TestDatabase, json_of, run_cli, workspace_root};
use serde_json::json;

fn sock_shop_yaml() -> String {
    std::fs::read_to_string(workspace_root().join("topology/bundled/sock-shop.yaml")).unwrap()
}

/// The whole life of a server on one database; `options` picks the database.
/// How many services the server's current topology has.
async fn service_count(server: &Server) -> usize {
    let topology = json_of(server.get("/api/v1/topology").await).await;
    topology["services"].as_array().unwrap().len()
}

async fn lifecycle(options: ServerOptions) {
    let server = Server::start(options.clone()).await;

    // With nothing configured: the bundled example, as version 1.
    let topology = server.get("/api/v1/topology").await;
    assert_eq!(topology.status(), 200);
    assert_eq!(topology.headers()["etag"], "\"1\"");
    let topology = json_of(topology).await;
    assert!(topology["services"].as_array().unwrap().len() >= 10);

    // A YAML topology replaces it as version 2 and reads back normalised.
    let put = server
        .put(
            "/api/v1/topology?note=e2e",
            "application/yaml",
            sock_shop_yaml(),
        )
        .await;
    assert_eq!(put.status(), 201);
    let change = json_of(put).await;
    assert_eq!(change["version"]["id"], 2);
    assert_eq!(change["version"]["services"], 15);
    let served = json_of(server.get("/api/v1/topology").await).await;
    let names = rootcause::testing::texts(&served["services"], "name");
    assert!(
        names.contains(&"orders-db") && names.contains(&"queue-master"),
        "{names:?}"
    );

    // Putting back what was served changes nothing.
    let same = server
        .put("/api/v1/topology", "application/json", served.to_string())
        .await;
    assert_eq!(same.status(), 200);
    assert_eq!(json_of(same).await["changed"], false);

    // A broken topology: 422, the problem and its path named, nothing stored.
    let broken = json!({
        "services": [{"name": "a", "kind": "service"}],
        "dependencies": [{"caller": "a", "callee": "nope"}]
    });
    let refused = server
        .put("/api/v1/topology", "application/json", broken.to_string())
        .await;
    assert_eq!(refused.status(), 422);
    let error = json_of(refused).await;
    assert_eq!(error["problems"][0]["path"], "dependencies[0].callee");
    assert!(
        error["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nope")
    );

    let service = json_of(server.get("/api/v1/services/carts-db").await).await;
    assert_eq!(service["callers"][0]["service"], "carts");
    assert_eq!(service["blast_radius"]["count"], 4);

    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("# TYPE rootcause_http_requests_total counter"));
    assert!(metrics.contains("route=\"/api/v1/topology\",status=\"422\""));
    assert!(
        metrics.contains("rootcause_topology_version 2"),
        "{metrics}"
    );

    let openapi = json_of(server.get("/api/v1/openapi.json").await).await;
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3."));
    assert!(openapi["paths"]["/api/v1/topology"]["put"].is_object());

    // SIGTERM: a clean exit, quickly.
    let log_before_stop = server.log();
    let status = server.terminate(Duration::from_secs(10));
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{log_before_stop}"
    );

    // A restart on the same database continues from version 2.
    let restarted = Server::start(options).await;
    let topology = restarted.get("/api/v1/topology").await;
    assert_eq!(topology.headers()["etag"], "\"2\"");
    let versions = json_of(restarted.get("/api/v1/topology/versions").await).await;
    let ids: Vec<i64> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [2, 1]);
    assert_eq!(versions["items"][0]["note"], "e2e");
    let status = restarted.terminate(Duration::from_secs(10));
    assert!(status.success());
}

#[tokio::test]
async fn serves_changes_and_stops_cleanly_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    lifecycle(ServerOptions {
        data_dir: Some(dir.path().to_path_buf()),
        ..ServerOptions::default()
    })
    .await;
    assert!(
        dir.path().join("rootcause.db").is_file(),
        "the SQLite file is in the data directory"
    );
}

#[tokio::test]
async fn serves_changes_and_stops_cleanly_on_postgres() {
    let Some(database) = TestDatabase::create().await else {
        return; // TestDatabase::create said so loudly, or failed the test under ROOTCAUSE_REQUIRE_E2E=1.
    };
    lifecycle(ServerOptions {
        args: vec!["--database-url".into(), database.url.clone()],
        ..ServerOptions::default()
    })
    .await;
    database.drop().await;
}

#[tokio::test]
async fn configuration_comes_from_file_environment_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rootcause.toml");
    std::fs::write(
        &config,
        "topology = \"train-ticket\"\nlog_filter = \"debug\"\n[http]\nbody_limit_bytes = 100000\n",
    )
    .unwrap();
    let server = Server::start(ServerOptions {
        args: vec!["--config".into(), config.display().to_string()],
        // The environment beats the file.
        env: vec![("ROOTCAUSE_HTTP__BODY_LIMIT_BYTES".into(), "2000".into())],
        ..ServerOptions::default()
    })
    .await;
    assert_eq!(
        service_count(&server).await,
        48,
        "train-ticket from the file"
    );
    let versions = json_of(server.get("/api/v1/topology/versions").await).await;
    assert_eq!(versions["items"][0]["source"], "builtin:train-ticket");
    let too_big = server
        .put("/api/v1/topology", "application/yaml", sock_shop_yaml())
        .await;
    assert_eq!(
        too_big.status(),
        413,
        "the limit from the environment applies"
    );
    assert_eq!(json_of(too_big).await["code"], "body_too_large");
    assert!(
        server.log().contains("\"level\":\"DEBUG\""),
        "log_filter from the file applies"
    );
    server.terminate(Duration::from_secs(10));

    // A flag beats the file.
    let server = Server::start(ServerOptions {
        args: vec![
            "--config".into(),
            config.display().to_string(),
            "--topology".into(),
            "sock-shop".into(),
        ],
        ..ServerOptions::default()
    })
    .await;
    assert_eq!(service_count(&server).await, 15, "sock-shop from the flag");
}

#[tokio::test]
async fn ctrl_c_stops_cleanly_too() {
    let server = Server::start(ServerOptions::default()).await;
    server.send_signal(rootcause_e2e::Signal::SIGINT);
    let log = server.log();
    let status = server.wait_for_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}; log:\n{log}");
}

#[tokio::test]
async fn sigterm_lets_a_request_in_flight_finish() {
    use std::io::{Read, Write};

    let server = Server::start(ServerOptions::default()).await;
    let body = sock_shop_yaml();
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    let address = server.url.trim_start_matches("http://").to_owned();
    let mut connection = std::net::TcpStream::connect(&address).unwrap();
    write!(
        connection,
        "PUT /api/v1/topology HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/yaml\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    connection.write_all(first).unwrap();
    connection.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    // Half the body is in; stop the server, then send the rest.
    server.send_sigterm();
    std::thread::sleep(Duration::from_millis(300));
    connection.write_all(rest).unwrap();
    let mut response = String::new();
    connection.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");

    let status = server.wait_for_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}

#[test]
fn bad_configuration_stops_the_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let config = dir.path().join("rootcause.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\n[http]\nbody_limt_bytes = 5\n",
    )
    .unwrap();
    let (status, _, stderr) = run_cli(&[
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data_dir,
    ]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("body_limt_bytes"), "{stderr}");

    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "services:\n  - {name: a, kind: service}\ndependencies:\n  - {caller: a, callee: ghost}\n",
    )
    .unwrap();
    let (status, _, stderr) = run_cli(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--topology",
        broken.to_str().unwrap(),
        "--data-dir",
        data_dir,
    ]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("dependencies[0].callee"), "{stderr}");
    assert!(stderr.contains("ghost"), "{stderr}");
}
