//! MCP registry, declarations, detection reports and drift.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::Harness;

#[tokio::test]
async fn registry_and_agent_declarations() {
    let h = Harness::start().await;
    let (s, m) = h
        .admin(Method::POST, "/api/v1/mcp-servers", Some(json!({"name": "filesystem", "url": "stdio://npx @modelcontextprotocol/server-filesystem", "capabilities": ["read_file"]})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    let mid = m["id"].as_str().unwrap().to_owned();
    let (s, _) = h
        .admin(
            Method::POST,
            "/api/v1/mcp-servers",
            Some(json!({"name": "filesystem"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, list) = h.admin(Method::GET, "/api/v1/mcp-servers", None).await;
    assert_eq!(list["total"], 1);
    let (s, got) = h
        .admin(Method::GET, "/api/v1/mcp-servers/filesystem", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["id"], mid);
    // The SDK's register_mcp: by registered id (resolved to its name) or by name.
    let a = h.register("mcp-user").await;
    let (s, r) = h
        .as_agent(&a, Method::POST, &format!("/api/v1/sdk-api/agents/{}/mcp-servers", a.id), Some(json!({"mcp_server_ids": [mid], "detected_method": "manual", "confidence": 100.0, "metadata": {}})))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["success"], true);
    assert_eq!(r["added"], 1);
    assert_eq!(r["talks_to"], json!(["filesystem"]));
    let (s, r) = h
        .admin(
            Method::PUT,
            &format!("/api/v1/agents/{}/mcp-servers", a.id),
            Some(json!({"mcp_server_ids": ["github", "filesystem"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r["added"], 1);
    assert_eq!(r["total_count"], 2);
    let (s, _) = h
        .admin(
            Method::PUT,
            &format!("/api/v1/agents/{}/mcp-servers", a.id),
            Some(json!({"mcp_server_ids": []})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = h
        .admin(Method::DELETE, "/api/v1/mcp-servers/filesystem", None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = h
        .admin(Method::GET, &format!("/api/v1/mcp-servers/{mid}"), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    h.stop().await;
}

#[tokio::test]
async fn undeclared_mcp_servers_are_drift_with_an_alert_and_lower_trust() {
    let h = Harness::start().await;
    let a = h.register("drifter").await;
    let path = format!("/api/v1/detection/agents/{}/report", a.id);
    let (_, before) = h
        .admin(
            Method::GET,
            &format!("/api/v1/agents/{}/trust-score", a.id),
            None,
        )
        .await;
    // Declared: no drift.
    let (s, _) = h
        .as_agent(
            &a,
            Method::POST,
            &format!("/api/v1/sdk-api/agents/{}/mcp-servers", a.id),
            Some(json!({"mcp_server_ids": ["filesystem"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // Exactly the SDK's report (vector V4's shape).
    let report = json!({"detections": [
        {"confidence": 100.0, "details": {"call_count": 1}, "detectionMethod": "sdk_runtime", "mcpServer": "filesystem", "sdkVersion": "aim-sdk-python@1.0.0", "timestamp": "2025-10-24T14:44:21+00:00"},
        {"confidence": 90.0, "details": {"packageName": "mcp-server-fetch"}, "detectionMethod": "sdk_import", "mcpServer": "mcp-server-fetch", "sdkVersion": "aim-sdk-python@1.0.0", "timestamp": "2025-10-24T14:44:21+00:00"},
        {"confidence": 100.0, "details": {"platform": "python", "integrated": true}, "detectionMethod": "sdk_integration", "mcpServer": "aim-sdk-integration", "timestamp": "2025-10-24T14:44:21+00:00"},
    ]});
    let (s, r) = h
        .as_agent(&a, Method::POST, &path, Some(report.clone()))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["success"], true);
    assert_eq!(r["detectionsProcessed"], 3);
    assert_eq!(r["newMCPs"], json!(["filesystem", "mcp-server-fetch"]));
    assert_eq!(r["existingMCPs"], json!([]));
    assert_eq!(r["driftDetected"], json!(["mcp-server-fetch"]));
    // An alert was raised, once.
    let (s, r) = h.as_agent(&a, Method::POST, &path, Some(report)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r["existingMCPs"], json!(["filesystem", "mcp-server-fetch"]));
    assert_eq!(r["driftDetected"], json!([]));
    let (_, alerts) = h
        .admin(
            Method::GET,
            &format!("/api/v1/alerts?agent_id={}", a.id),
            None,
        )
        .await;
    let alerts = alerts["alerts"].as_array().unwrap().clone();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["alert_type"], "configuration_drift");
    assert!(
        alerts[0]["title"]
            .as_str()
            .unwrap()
            .contains("mcp-server-fetch")
    );
    // Trust dropped, with a history entry naming the cause.
    let (_, after) = h
        .admin(
            Method::GET,
            &format!("/api/v1/agents/{}/trust-score", a.id),
            None,
        )
        .await;
    assert!(
        after["score"].as_f64().unwrap() < before["score"].as_f64().unwrap(),
        "{before} {after}"
    );
    assert!(after["factors"]["drift_detection"].as_f64().unwrap() < 1.0);
    assert!(after["factors"]["security_alerts"].as_f64().unwrap() < 1.0);
    let (_, hist) = h
        .admin(
            Method::GET,
            &format!("/api/v1/agents/{}/trust-score/history", a.id),
            None,
        )
        .await;
    assert!(
        hist["history"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("MCP drift"),
        "{hist}"
    );
    // Status and inventory.
    let (_, st) = h
        .as_agent(
            &a,
            Method::GET,
            &format!("/api/v1/detection/agents/{}/status", a.id),
            None,
        )
        .await;
    assert_eq!(st["detectedMCPs"].as_array().unwrap().len(), 2);
    let (_, inv) = h
        .admin(
            Method::GET,
            &format!("/api/v1/agents/{}/mcp-servers", a.id),
            None,
        )
        .await;
    let fetch = inv["mcp_servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "mcp-server-fetch")
        .unwrap()
        .clone();
    assert_eq!(fetch["drift"], true);
    assert_eq!(fetch["detected_by"], json!(["sdk_import"]));
    // Acknowledge the alert.
    let aid = alerts[0]["id"].as_str().unwrap();
    let (s, ack) = h
        .admin(
            Method::POST,
            &format!("/api/v1/alerts/{aid}/acknowledge"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ack["acknowledged_by"], "admin@acme.test");
    let (s, _) = h
        .admin(
            Method::POST,
            &format!("/api/v1/alerts/{aid}/acknowledge"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, open) = h
        .admin(Method::GET, "/api/v1/alerts?unacknowledged=true", None)
        .await;
    assert_eq!(open["alerts"].as_array().unwrap().len(), 0);
    h.stop().await;
}

#[tokio::test]
async fn detection_reports_are_validated() {
    let h = Harness::start().await;
    let a = h.register("reporter").await;
    let path = format!("/api/v1/detection/agents/{}/report", a.id);
    let event = |method: &str, conf: f64, ts: &str| json!({"detections": [{"mcpServer": "x", "detectionMethod": method, "confidence": conf, "timestamp": ts}]});
    for (body, want) in [
        (json!({"detections": []}), "must not be empty"),
        (
            event("telepathy", 50.0, "2025-10-24T14:44:21Z"),
            "detectionMethod",
        ),
        (event("manual", 101.0, "2025-10-24T14:44:21Z"), "confidence"),
        (event("manual", 50.0, "yesterday"), "timestamp"),
        (event("manual", 50.0, "2025-10-24T14:44:21"), "timestamp"),
        (json!({"detections": "x"}), "invalid JSON body"),
    ] {
        let (s, e) = h.as_agent(&a, Method::POST, &path, Some(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        assert!(e["error"].as_str().unwrap().contains(want), "{want}: {e}");
    }
    for m in aim_server::wire::DETECTION_METHODS {
        let (s, e) = h
            .as_agent(
                &a,
                Method::POST,
                &path,
                Some(event(m, 75.0, "2025-10-24T14:44:21Z")),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{m}: {e}");
    }
    // The capability report endpoint stores the report; high risk raises an alert.
    let (s, r) = h
        .as_agent(&a, Method::POST, &format!("/api/v1/detection/agents/{}/capabilities/report", a.id), Some(json!({"detectedAt": "2025-10-24T14:44:21Z", "riskAssessment": {"riskLevel": "HIGH", "overallRiskScore": 80}})))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["riskLevel"], "high");
    let (s, latest) = h
        .admin(
            Method::GET,
            &format!("/api/v1/detection/agents/{}/capabilities/latest", a.id),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(latest["riskAssessment"]["overallRiskScore"], 80);
    let (_, alerts) = h.admin(Method::GET, "/api/v1/alerts", None).await;
    assert!(
        alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["alert_type"] == "capability_risk")
    );
    h.stop().await;
}
