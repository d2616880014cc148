//! The built-in echo provisioner's plan: a JSON file uploaded with `POST /api/v2/files`
//! that says which resources and agents a build produces, how long each transition takes
//! and whether it fails. Validated at upload, so a bad plan is refused with the field at
//! fault rather than failing a build later.

use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct EchoPlan {
    pub resources: Vec<EchoResource>,
    pub apply_delay_ms: Transitions<u64>,
    pub fail: Transitions<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EchoResource {
    pub name: String,
    pub resource_type: String,
    pub agents: Vec<EchoAgent>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EchoAgent {
    pub name: String,
    pub auth_token: Uuid,
    pub os: String,
    pub architecture: String,
    pub directory: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Transitions<T> {
    pub start: T,
    pub stop: T,
    pub delete: T,
}

impl<T: Copy> Transitions<T> {
    pub fn get(&self, transition: &str) -> Option<T> {
        match transition {
            "start" => Some(self.start),
            "stop" => Some(self.stop),
            "delete" => Some(self.delete),
            _ => None,
        }
    }
}

/// A plan problem: the JSON path of the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub field: String,
    pub detail: String,
}

fn err(field: impl Into<String>, detail: impl Into<String>) -> PlanError {
    PlanError {
        field: field.into(),
        detail: detail.into(),
    }
}

fn string(v: &Value, field: &str, required: bool) -> Result<String, PlanError> {
    match v.get(field.rsplit('.').next().unwrap_or(field)) {
        None | Some(Value::Null) if !required => Ok(String::new()),
        Some(Value::String(s)) if !s.is_empty() || !required => Ok(s.clone()),
        Some(Value::String(_)) => Err(err(field, "must not be empty")),
        None | Some(Value::Null) => Err(err(field, "is required")),
        Some(_) => Err(err(field, "must be a string")),
    }
}

fn transitions<T: Copy + Default>(
    v: &Value,
    field: &str,
    parse: impl Fn(&Value) -> Option<T>,
    kind: &str,
) -> Result<Transitions<T>, PlanError> {
    let mut out = Transitions::default();
    match v.get(field) {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Object(map)) => {
            for (key, value) in map {
                let parsed = parse(value)
                    .ok_or_else(|| err(format!("{field}.{key}"), format!("must be {kind}")))?;
                match key.as_str() {
                    "start" => out.start = parsed,
                    "stop" => out.stop = parsed,
                    "delete" => out.delete = parsed,
                    _ => {
                        return Err(err(
                            format!("{field}.{key}"),
                            "must be one of start, stop, delete",
                        ));
                    }
                }
            }
        }
        Some(_) => return Err(err(field, "must be an object")),
    }
    Ok(out)
}

/// Parses and validates a plan.
pub fn parse(bytes: &[u8]) -> Result<EchoPlan, PlanError> {
    let root: Value =
        serde_json::from_slice(bytes).map_err(|e| err("", format!("not valid JSON: {e}")))?;
    if !root.is_object() {
        return Err(err("", "the plan must be a JSON object"));
    }
    let resources = match root.get("resources") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => return Err(err("resources", "must be an array")),
    };
    let mut seen_tokens = Vec::new();
    let mut parsed = Vec::with_capacity(resources.len());
    for (i, r) in resources.iter().enumerate() {
        let at = format!("resources[{i}]");
        if !r.is_object() {
            return Err(err(at, "must be an object"));
        }
        let name = string(r, &format!("{at}.name"), true)?;
        let resource_type = string(r, &format!("{at}.type"), true)?;
        let agents = match r.get("agents") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err(err(format!("{at}.agents"), "must be an array")),
        };
        let mut parsed_agents = Vec::with_capacity(agents.len());
        for (j, a) in agents.iter().enumerate() {
            let at = format!("{at}.agents[{j}]");
            if !a.is_object() {
                return Err(err(at, "must be an object"));
            }
            let name = string(a, &format!("{at}.name"), true)?;
            if parsed_agents.iter().any(|p: &EchoAgent| p.name == name) {
                return Err(err(
                    format!("{at}.name"),
                    format!("duplicate agent name {name:?}"),
                ));
            }
            let raw_token = string(a, &format!("{at}.auth_token"), true)?;
            let auth_token = Uuid::parse_str(&raw_token)
                .map_err(|_| err(format!("{at}.auth_token"), "must be a UUID"))?;
            if seen_tokens.contains(&auth_token) {
                return Err(err(
                    format!("{at}.auth_token"),
                    "is used by another agent in this plan",
                ));
            }
            seen_tokens.push(auth_token);
            parsed_agents.push(EchoAgent {
                name,
                auth_token,
                os: string(a, &format!("{at}.os"), false)?,
                architecture: string(a, &format!("{at}.architecture"), false)?,
                directory: string(a, &format!("{at}.directory"), false)?,
            });
        }
        parsed.push(EchoResource {
            name,
            resource_type,
            agents: parsed_agents,
        });
    }
    // At most ten minutes, so a typo cannot hold a daemon for a day.
    let delay = |v: &Value| v.as_u64().filter(|ms| *ms <= 600_000);
    Ok(EchoPlan {
        resources: parsed,
        apply_delay_ms: transitions(
            &root,
            "apply_delay_ms",
            delay,
            "milliseconds between 0 and 600000",
        )?,
        fail: transitions(&root, "fail", Value::as_bool, "a boolean")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "6c1cdde9-4b47-4b2e-8d8e-7b5a2b1b0c11";

    #[test]
    fn the_documented_plan_parses() {
        let plan = format!(
            r#"{{"resources": [{{"name": "dev", "type": "echo_container", "agents": [{{"name": "main",
            "auth_token": "{TOKEN}", "os": "linux", "architecture": "amd64"}}]}}],
            "apply_delay_ms": {{"start": 0, "stop": 250, "delete": 0}}, "fail": {{"start": false}}}}"#
        );
        let plan = parse(plan.as_bytes()).unwrap();
        assert_eq!(plan.resources[0].agents[0].auth_token.to_string(), TOKEN);
        assert_eq!(plan.apply_delay_ms.get("stop"), Some(250));
        assert_eq!(plan.fail.get("start"), Some(false));
    }

    #[test]
    fn bad_plans_name_the_field() {
        let cases = [
            (r#"[]"#, "", "the plan must be a JSON object"),
            (r#"{"resources": {}}"#, "resources", "must be an array"),
            (
                r#"{"resources": [{"type": "x"}]}"#,
                "resources[0].name",
                "is required",
            ),
            (
                r#"{"resources": [{"name": "a", "type": "x", "agents": [{"name": "m", "auth_token": "nope"}]}]}"#,
                "resources[0].agents[0].auth_token",
                "must be a UUID",
            ),
            (
                r#"{"apply_delay_ms": {"start": -1}}"#,
                "apply_delay_ms.start",
                "must be milliseconds between 0 and 600000",
            ),
            (
                r#"{"fail": {"reboot": true}}"#,
                "fail.reboot",
                "must be one of start, stop, delete",
            ),
        ];
        for (input, field, detail) in cases {
            assert_eq!(parse(input.as_bytes()), Err(err(field, detail)), "{input}");
        }
    }
}
