//! A checker for CloudWatch's Embedded Metric Format specification: the rules CloudWatch
//! applies before it turns a log line into metrics (the specification's JSON schema plus the
//! member references it describes in prose).

use serde_json::Value;

/// CloudWatch's standard units.
const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

pub fn validate(line: &Value) -> Result<(), String> {
    let root = line.as_object().ok_or("the line is not a JSON object")?;
    let aws = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("no _aws object")?;
    let ts = aws.get("Timestamp").ok_or("no _aws.Timestamp")?;
    if ts.as_i64().is_none_or(|t| t < 0) {
        return Err("_aws.Timestamp is not a non-negative integer of milliseconds".into());
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("no _aws.CloudWatchMetrics array")?;
    if directives.is_empty() {
        return Err("CloudWatchMetrics is empty".into());
    }
    for d in directives {
        let ns = d
            .get("Namespace")
            .and_then(Value::as_str)
            .ok_or("a directive has no Namespace")?;
        if ns.is_empty() || ns.len() > 1024 {
            return Err(format!("Namespace {ns:?} is not 1 to 1024 characters"));
        }
        let sets = d
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or("no Dimensions array")?;
        for set in sets {
            let set = set.as_array().ok_or("a DimensionSet is not an array")?;
            if set.len() > 30 {
                return Err("a DimensionSet has more than 30 dimensions".into());
            }
            for name in set {
                let name = name.as_str().ok_or("a dimension name is not a string")?;
                match root.get(name) {
                    Some(Value::String(v)) if !v.is_empty() && v.len() <= 1024 => {}
                    _ => {
                        return Err(format!(
                            "dimension {name} has no string value of 1 to 1024 characters"
                        ))
                    }
                }
            }
        }
        let metrics = d
            .get("Metrics")
            .and_then(Value::as_array)
            .ok_or("no Metrics array")?;
        if metrics.is_empty() || metrics.len() > 100 {
            return Err("Metrics must hold 1 to 100 definitions".into());
        }
        for m in metrics {
            let name = m
                .get("Name")
                .and_then(Value::as_str)
                .ok_or("a metric has no Name")?;
            if name.is_empty() || name.len() > 1024 {
                return Err(format!("metric name {name:?} is not 1 to 1024 characters"));
            }
            if let Some(unit) = m.get("Unit") {
                let unit = unit.as_str().ok_or("a Unit is not a string")?;
                if !UNITS.contains(&unit) {
                    return Err(format!("{unit} is not a CloudWatch unit"));
                }
            }
            if let Some(res) = m.get("StorageResolution") {
                if res != 1 && res != 60 {
                    return Err("StorageResolution must be 1 or 60".into());
                }
            }
            match root.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(values))
                    if values.iter().all(Value::is_number) && values.len() <= 100 => {}
                _ => return Err(format!("metric {name} has no numeric value")),
            }
        }
    }
    Ok(())
}
