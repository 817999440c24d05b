//! Where a stored thing came from: made through this gateway's management API, or pushed by the
//! control plane. Stored and shown as `gateway_api` / `control_plane`.

use std::fmt;
use std::str::FromStr;

/// Who made an API (or a key).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Created through the management REST API.
    #[default]
    GatewayApi,
    /// Pushed by the platform API.
    ControlPlane,
}

/// A stored origin this build does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown origin '{0}'")]
pub struct UnknownOrigin(pub String);

// === impl Origin ===

impl Origin {
    /// The stored and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::GatewayApi => "gateway_api",
            Origin::ControlPlane => "control_plane",
        }
    }
}

impl FromStr for Origin {
    type Err = UnknownOrigin;

    fn from_str(s: &str) -> Result<Origin, UnknownOrigin> {
        match s {
            "gateway_api" => Ok(Origin::GatewayApi),
            "control_plane" => Ok(Origin::ControlPlane),
            other => Err(UnknownOrigin(other.to_string())),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_forms_round_trip_and_unknown_ones_are_refused() {
        for o in [Origin::GatewayApi, Origin::ControlPlane] {
            assert_eq!(o.as_str().parse::<Origin>().unwrap(), o);
        }
        assert!("local".parse::<Origin>().is_err());
        assert_eq!(serde_json::to_value(Origin::ControlPlane).unwrap(), "control_plane");
    }
}
