//! Connects to `127.0.0.1:PORT` (PORT from the item's `port` field) and
//! reads: a server that never writes keeps the plugin blocked inside a host
//! call, where no guest-time deadline can fire.

use lem_plugin_sdk::record::Record;
use lem_plugin_sdk::scorer::{Item, PluginError, PluginInfo, ScoreCard, Scorer};
use std::io::Read;

struct WaitsOnSocket;

impl Scorer for WaitsOnSocket {
    fn describe() -> PluginInfo {
        PluginInfo::scorer("waits-on-socket", "0.1.0", &["ok"])
    }

    fn score(item: Item, _response: String) -> Result<ScoreCard, PluginError> {
        if item.id != "wait" {
            return Ok(ScoreCard::metric("ok", 1.0));
        }
        let port = Record::parse(&item.record)?.text("port")?;
        let mut stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}"))
            .map_err(|e| PluginError::Internal(format!("connect: {e}")))?;
        let mut byte = [0u8; 1];
        let n = stream
            .read(&mut byte)
            .map_err(|e| PluginError::Internal(format!("read: {e}")))?;
        Ok(ScoreCard::metric("ok", n as f64))
    }
}

lem_plugin_sdk::export_scorer!(WaitsOnSocket);
