//! Opens a TCP connection: needs wasi:sockets.

use lem_plugin_sdk::scorer::{Item, PluginError, PluginInfo, ScoreCard, Scorer};

struct Guest;

impl Scorer for Guest {
    fn describe() -> PluginInfo {
        PluginInfo::scorer("opens-socket", "0.1.0", &["ok"])
    }

    fn score(_item: Item, _response: String) -> Result<ScoreCard, PluginError> {
        let stream = std::net::TcpStream::connect("127.0.0.1:80")
            .map_err(|e| PluginError::Internal(e.to_string()))?;
        Ok(ScoreCard::metric(
            "ok",
            stream.peer_addr().is_ok() as u8 as f64,
        ))
    }
}

lem_plugin_sdk::export_scorer!(Guest);
