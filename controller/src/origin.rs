//! Where a stored object came from: made here through the management API, or pushed by the
//! control plane. The strings are the database's and the REST API's (`origin` fields).

use std::fmt;

/// Stores a typed state as its text (`as_str` / `FromStr`) in SQLite, so rows carry the enum and
/// the column keeps its string; a column holding anything else is a conversion error on read.
macro_rules! sql_text_enum {
    ($t:ty) => {
        impl rusqlite::types::ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(self.as_str()))
            }
        }

        impl rusqlite::types::FromSql for $t {
            fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                v.as_str()?
                    .parse()
                    .map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
            }
        }
    };
}
pub(crate) use sql_text_enum;

/// Where a stored object (an API, a key) came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Made here, through the management API (`gateway_api`).
    #[default]
    GatewayApi,
    /// Pushed by the platform API (`control_plane`).
    ControlPlane,
}

/// A stored string that names no [`Origin`].
#[derive(Debug, thiserror::Error)]
#[error("unknown origin {0:?}")]
pub struct UnknownOrigin(pub String);

// === impl Origin ===

impl Origin {
    /// The stored and shown form.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::GatewayApi => "gateway_api",
            Origin::ControlPlane => "control_plane",
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with a stored form, as rows were compared before they were typed.
impl PartialEq<&str> for Origin {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::str::FromStr for Origin {
    type Err = UnknownOrigin;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gateway_api" => Ok(Origin::GatewayApi),
            "control_plane" => Ok(Origin::ControlPlane),
            other => Err(UnknownOrigin(other.to_string())),
        }
    }
}

sql_text_enum!(Origin);

impl serde::Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_its_stored_form_and_refuses_others() {
        for o in [Origin::GatewayApi, Origin::ControlPlane] {
            assert_eq!(o.as_str().parse::<Origin>().unwrap(), o);
        }
        assert!("local".parse::<Origin>().is_err());
        assert!("".parse::<Origin>().is_err());
        assert_eq!(serde_json::to_value(Origin::ControlPlane).unwrap(), "control_plane");
    }
}
