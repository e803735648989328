//! The IAM policy in `template.yaml` grants each function exactly the DynamoDB actions its
//! code calls, on its table and the indexes it queries, and nothing else.
//!
//! "What the code calls" is read from the source: starting at the function's `main`, every
//! function of the binary and of the library that its code can reach (by name, an
//! over-approximation), test modules left out; in those, every SDK operation (`.put_item()`,
//! `.query()`, …) and, for `TransactWriteItems`, the kinds of item it builds (IAM has no
//! `TransactWriteItems` action: each `Put`, `Update`, `Delete` and `ConditionCheck` needs
//! `PutItem`, `UpdateItem`, `DeleteItem` and `ConditionCheckItem`). Code that only another
//! binary reaches, like `table::create_table` (clerk-webhooks-create-table), does not count.
//!
//! Every function of the template is checked: its binary comes from its
//! `Metadata.BuildProperties.Binary` and the `[[bin]]` of that name in Cargo.toml.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every DynamoDB operation of the SDK's client. Its IAM action has the same name, except
/// where [`actions_of`] says otherwise.
const DYNAMODB_OPERATIONS: &[&str] = &[
    "BatchExecuteStatement",
    "BatchGetItem",
    "BatchWriteItem",
    "CreateBackup",
    "CreateGlobalTable",
    "CreateTable",
    "DeleteBackup",
    "DeleteItem",
    "DeleteResourcePolicy",
    "DeleteTable",
    "DescribeBackup",
    "DescribeContinuousBackups",
    "DescribeContributorInsights",
    "DescribeEndpoints",
    "DescribeExport",
    "DescribeGlobalTable",
    "DescribeGlobalTableSettings",
    "DescribeImport",
    "DescribeKinesisStreamingDestination",
    "DescribeLimits",
    "DescribeTable",
    "DescribeTableReplicaAutoScaling",
    "DescribeTimeToLive",
    "DisableKinesisStreamingDestination",
    "EnableKinesisStreamingDestination",
    "ExecuteStatement",
    "ExecuteTransaction",
    "ExportTableToPointInTime",
    "GetItem",
    "GetResourcePolicy",
    "ImportTable",
    "ListBackups",
    "ListContributorInsights",
    "ListExports",
    "ListGlobalTables",
    "ListImports",
    "ListTables",
    "ListTagsOfResource",
    "PutItem",
    "PutResourcePolicy",
    "Query",
    "RestoreTableFromBackup",
    "RestoreTableToPointInTime",
    "Scan",
    "TagResource",
    "TransactGetItems",
    "TransactWriteItems",
    "UntagResource",
    "UpdateContinuousBackups",
    "UpdateContributorInsights",
    "UpdateGlobalTable",
    "UpdateGlobalTableSettings",
    "UpdateItem",
    "UpdateKinesisStreamingDestination",
    "UpdateTable",
    "UpdateTableReplicaAutoScaling",
    "UpdateTimeToLive",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------
// What the code calls
// ---------------------------------------------------------------------------------------

/// `source` with comments, string and char literals replaced by spaces (lines and byte
/// offsets kept), so braces and names can be matched on what is code.
fn code_only(source: &str) -> String {
    let b = source.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |n| i + n);
            blank(&mut out, i, end);
            i = end;
        } else if rest.starts_with(b"/*") {
            let (mut depth, mut j) = (0, i);
            while j < b.len() {
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if let Some(hashes) = raw_string_start(b, i) {
            // r"…", r#"…"#, br#"…"#: ends at a quote followed by as many #.
            let open = b[i..].iter().position(|&c| c == b'"').unwrap() + i;
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let end = b[open + 1..]
                .windows(close.len())
                .position(|w| w == close)
                .map_or(b.len(), |n| open + 1 + n + close.len());
            blank(&mut out, i, end);
            i = end;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i, (j + 1).min(b.len()));
            i = j + 1;
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '\u{1F600}', 'é'), or a lifetime ('a): left alone.
            let j = if b.get(i + 1) == Some(&b'\\') {
                // Skip the escaped character itself: '\'' ends at the second quote.
                b.get(i + 3..)
                    .and_then(|r| r.iter().position(|&c| c == b'\''))
                    .map(|n| i + 3 + n)
            } else {
                let ch = source[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + ch) == Some(&b'\'')).then_some(i + 1 + ch)
            };
            match j {
                Some(j) => {
                    blank(&mut out, i, j + 1);
                    i = j + 1;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The number of `#` of a raw string literal starting at `i`, if one does.
fn raw_string_start(b: &[u8], i: usize) -> Option<usize> {
    if i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') {
        return None;
    }
    let mut j = i;
    if b.get(j) == Some(&b'b') {
        j += 1;
    }
    if b.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = b[j..].iter().take_while(|&&c| c == b'#').count();
    (b.get(j + hashes) == Some(&b'"')).then_some(hashes)
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The index just past the `}` matching the `{` at `open`.
fn block_end(code: &[u8], open: usize) -> usize {
    let mut depth = 0;
    for (k, &c) in code.iter().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    code.len()
}

/// Blanks every item marked `#[cfg(test)]`: tests are not deployed.
fn without_tests(code: &str) -> String {
    let mut out = code.as_bytes().to_vec();
    let mut from = 0;
    while let Some(at) = code[from..].find("#[cfg(test)]").map(|n| from + n) {
        let open = code[at..].find(['{', ';']).map_or(code.len(), |n| at + n);
        let end = if code.as_bytes().get(open) == Some(&b'{') {
            block_end(code.as_bytes(), open)
        } else {
            open + 1
        };
        for c in &mut out[at..end.min(code.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        from = end.min(code.len());
    }
    String::from_utf8(out).unwrap()
}

/// The functions of `code` (already [`code_only`]): name -> bodies (a name can be defined
/// by several types).
fn functions(code: &str, into: &mut BTreeMap<String, Vec<String>>) {
    let b = code.as_bytes();
    let mut from = 0;
    while let Some(at) = code[from..].find("fn ").map(|n| from + n) {
        from = at + 3;
        if at > 0 && is_ident(b[at - 1]) {
            continue;
        }
        let name: String = code[at + 3..]
            .trim_start()
            .bytes()
            .take_while(|&c| is_ident(c))
            .map(char::from)
            .collect();
        let Some(open) = code[at..].find(['{', ';']).map(|n| at + n) else {
            break;
        };
        if b[open] == b';' || name.is_empty() {
            continue; // a declaration without a body
        }
        let end = block_end(b, open);
        into.entry(name)
            .or_default()
            .push(code[open..end].to_owned());
    }
}

/// The identifiers `body` mentions that may name a function: not a field read
/// (`plan.cascade`), not a field or binding followed by its type or value (`cascade: x`),
/// and not a path segment (`std::process::exit`; a turbofish `f::<T>` still counts).
fn identifiers(body: &str) -> BTreeSet<&str> {
    let b = body.as_bytes();
    let before = |at: usize| {
        b[..at]
            .iter()
            .rev()
            .find(|c| !c.is_ascii_whitespace())
            .copied()
    };
    let after = |at: usize| {
        let mut rest = b[at..].iter().filter(|c| !c.is_ascii_whitespace());
        (rest.next().copied(), rest.next().copied())
    };
    let mut names = BTreeSet::new();
    let mut start = None;
    for i in 0..=b.len() {
        let in_word = i < b.len() && is_ident(b[i]);
        match (start, in_word) {
            (None, true) => start = Some(i),
            (Some(from), false) => {
                start = None;
                let field_read = before(from) == Some(b'.') && after(i).0 != Some(b'(');
                let typed_or_set = after(i).0 == Some(b':') && after(i).1 != Some(b':');
                let path_segment = body[i..].trim_start().starts_with("::")
                    && !body[i..].trim_start().starts_with("::<");
                if !field_read && !typed_or_set && !path_segment {
                    names.insert(&body[from..i]);
                }
            }
            _ => {}
        }
    }
    names
}

/// The source files compiled into the binary whose `main` is in `entry`: that file, and the
/// library's modules (`mod x;` from src/lib.rs down), never another binary's file.
fn binary_files(entry: &str) -> Vec<PathBuf> {
    fn modules(file: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let code = code_only(&read(file));
        for line in code.lines() {
            let line = line.trim();
            let Some(name) = line
                .strip_prefix("pub mod ")
                .or_else(|| line.strip_prefix("mod "))
                .and_then(|rest| rest.strip_suffix(';'))
            else {
                continue;
            };
            let flat = dir.join(format!("{name}.rs"));
            let (path, sub) = if flat.exists() {
                (flat, dir.join(name))
            } else {
                (dir.join(name).join("mod.rs"), dir.join(name))
            };
            out.push(path.clone());
            modules(&path, &sub, out);
        }
    }
    let src = root().join("src");
    let mut files = vec![root().join(entry)];
    modules(&src.join("lib.rs"), &src, &mut files);
    files
}

/// What the code reachable from `main` in `entry` calls.
#[derive(Debug, Default)]
struct Calls {
    /// IAM actions, e.g. `dynamodb:PutItem`.
    actions: BTreeSet<String>,
    /// Whether it queries or scans an index (`.query()…index_name(…)…;`).
    uses_index: bool,
}

fn snake(pascal: &str) -> String {
    let mut out = String::new();
    for (i, c) in pascal.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The IAM actions an SDK operation needs; `bodies` (the reachable code) tells which kinds of
/// transaction item it builds.
fn actions_of(operation: &str, bodies: &str) -> Result<Vec<String>, String> {
    let kinds = |builder: &str, kinds: &[(&str, &str)]| -> Result<Vec<String>, String> {
        let mut found = Vec::new();
        let code = bodies.replace(char::is_whitespace, "");
        for (method, action) in kinds {
            if code.contains(&format!("{builder}::builder().{method}(")) {
                found.push(format!("dynamodb:{action}"));
            }
        }
        if found.is_empty() {
            return Err(format!(
                "{operation} is called, but no `{builder}::builder().…(` says which items it holds"
            ));
        }
        Ok(found)
    };
    match operation {
        "TransactWriteItems" => kinds(
            "TransactWriteItem",
            &[
                ("put", "PutItem"),
                ("update", "UpdateItem"),
                ("delete", "DeleteItem"),
                ("condition_check", "ConditionCheckItem"),
            ],
        ),
        "TransactGetItems" => kinds("TransactGetItem", &[("get", "GetItem")]),
        "ExecuteStatement" | "BatchExecuteStatement" | "ExecuteTransaction" => Err(format!(
            "{operation} (PartiQL) needs dynamodb:PartiQL* actions that depend on the statement: \
             extend tests/it/iam.rs"
        )),
        other => Ok(vec![format!("dynamodb:{other}")]),
    }
}

/// Every DynamoDB call the code reachable from `main` in `files[0]` makes.
fn calls_from(files: &[PathBuf]) -> Result<Calls, String> {
    let mut fns = BTreeMap::new();
    let mut entry_fns = BTreeMap::new();
    // Only a file that names the SDK can call DynamoDB: `uri.query()` in the Clerk API client
    // is not a Query. Other files still count for reachability.
    let mut sdk_bodies = BTreeSet::new();
    for (i, file) in files.iter().enumerate() {
        let source = read(file);
        let code = without_tests(&code_only(&source));
        let mut found = BTreeMap::new();
        functions(&code, &mut found);
        if source.contains("aws_sdk_dynamodb") {
            sdk_bodies.extend(found.values().flatten().cloned());
        }
        let into = if i == 0 { &mut entry_fns } else { &mut fns };
        for (name, bodies) in found {
            into.entry(name).or_insert_with(Vec::new).extend(bodies);
        }
    }
    // The entry's main, then everything named from reached code, until nothing new.
    let mut reached = BTreeSet::from(["main".to_owned()]);
    let mut bodies: Vec<String> = entry_fns.remove("main").ok_or("no fn main")?;
    // Functions are matched by name, so two of the same name are both followed: an
    // over-approximation that fails loudly (an action "called but not granted").
    for (name, b) in entry_fns {
        fns.entry(name).or_default().extend(b);
    }
    let mut next = 0;
    while next < bodies.len() {
        let names: Vec<String> = identifiers(&bodies[next])
            .into_iter()
            .filter(|n| fns.contains_key(*n) && !reached.contains(*n))
            .map(str::to_owned)
            .collect();
        for name in names {
            bodies.extend(fns[&name].iter().cloned());
            reached.insert(name);
        }
        next += 1;
    }
    bodies.retain(|body| sdk_bodies.contains(body));
    let all = bodies.join("\n");
    let code = all.replace(char::is_whitespace, "");
    let mut calls = Calls::default();
    for operation in DYNAMODB_OPERATIONS {
        // Fluent builders take no arguments: `.put_item()`.
        if code.contains(&format!(".{}()", snake(operation))) {
            calls.actions.extend(actions_of(operation, &all)?);
        }
    }
    // An index is read when a query or scan names one in the same statement (a table
    // definition names indexes too, without reading them).
    calls.uses_index = [".query()", ".scan()"].iter().any(|op| {
        code.match_indices(op).any(|(at, _)| {
            let statement = code[at..].split(';').next().unwrap_or_default();
            statement.contains("index_name(")
        })
    });
    Ok(calls)
}

// ---------------------------------------------------------------------------------------
// What template.yaml grants: a reader for the YAML that CloudFormation templates use
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Yaml {
    Map(Vec<(String, Yaml)>),
    Seq(Vec<Yaml>),
    /// Plain or quoted text; a tag stays in front (`!GetAtt Table.Arn`).
    Scalar(String),
}

impl Yaml {
    fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Yaml::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn path(&self, keys: &[&str]) -> Option<&Yaml> {
        keys.iter().try_fold(self, |node, key| node.get(key))
    }

    fn scalar(&self) -> Option<&str> {
        match self {
            Yaml::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// A sequence's items; a scalar is a sequence of one (IAM allows both).
    fn items(&self) -> Vec<&Yaml> {
        match self {
            Yaml::Seq(items) => items.iter().collect(),
            other => vec![other],
        }
    }
}

struct Line {
    indent: usize,
    text: String,
}

fn unquote(text: &str) -> String {
    let t = text.trim();
    if t.len() >= 2
        && ((t.starts_with('"') && t.ends_with('"')) || (t.starts_with('\'') && t.ends_with('\'')))
    {
        return t[1..t.len() - 1].to_owned();
    }
    t.to_owned()
}

fn scalar(text: &str) -> Yaml {
    let t = text.trim();
    if t.starts_with('[') && t.ends_with(']') {
        // A flow sequence: split on top-level commas.
        let inner = &t[1..t.len() - 1];
        let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(scalar(&inner[start..i]));
                    start = i + 1;
                }
                _ => {}
            }
        }
        if !inner.trim().is_empty() {
            items.push(scalar(&inner[start..]));
        }
        return Yaml::Seq(items);
    }
    if let Some(tagged) = t.strip_prefix('!') {
        if let Some((tag, value)) = tagged.split_once(' ') {
            if !value.trim_start().starts_with('[') {
                return Yaml::Scalar(format!("!{tag} {}", unquote(value)));
            }
        }
    }
    Yaml::Scalar(unquote(t))
}

/// `key: value` / `key:` with a plain or quoted key.
fn split_key(text: &str) -> Option<(String, &str)> {
    let (key, value) = if let Some(key) = text.strip_suffix(':') {
        (key, "")
    } else {
        let at = text.find(": ")?;
        (&text[..at], &text[at + 2..])
    };
    let plain = key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-./:".contains(c));
    let quoted = key.len() >= 2 && (key.starts_with('"') || key.starts_with('\''));
    (plain && !key.is_empty() || quoted).then(|| (unquote(key), value.trim()))
}

fn parse_yaml(text: &str) -> Result<Yaml, String> {
    let mut lines = Vec::new();
    let mut raw = text.lines().peekable();
    while let Some(line) = raw.next() {
        let indent = line.len() - line.trim_start().len();
        let mut content = line.trim().to_owned();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        // Comments: a # after a space, outside quotes.
        let mut quote = None;
        let mut prev = ' ';
        for (i, c) in content.clone().char_indices() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '#') if prev == ' ' => {
                    content.truncate(i);
                    break;
                }
                _ => {}
            }
            prev = c;
        }
        let content = content.trim_end().to_owned();
        // Block scalars (`key: >`): the more indented lines that follow are their text.
        let block = ["|", ">", "|-", ">-", "|+", ">+"]
            .iter()
            .any(|m| content.ends_with(&format!(": {m}")) || content == format!("- {m}"));
        if block {
            let mut folded = Vec::new();
            while let Some(next) = raw.peek() {
                let next_indent = next.len() - next.trim_start().len();
                if !next.trim().is_empty() && next_indent <= indent {
                    break;
                }
                folded.push(next.trim().to_owned());
                raw.next();
            }
            let head = content.rsplit_once(' ').unwrap().0;
            lines.push(Line {
                indent,
                text: format!("{head} \"{}\"", folded.join(" ").replace('"', "'")),
            });
            continue;
        }
        lines.push(Line {
            indent,
            text: content,
        });
    }
    let mut at = 0;
    let node = parse_block(&mut lines, &mut at, 0)?;
    if at != lines.len() {
        return Err(format!("cannot read line {:?}", lines[at].text));
    }
    Ok(node)
}

fn parse_block(lines: &mut Vec<Line>, at: &mut usize, indent: usize) -> Result<Yaml, String> {
    let is_item = |l: &Line| l.text == "-" || l.text.starts_with("- ");
    if *at < lines.len() && is_item(&lines[*at]) {
        let mut items = Vec::new();
        while *at < lines.len() && lines[*at].indent == indent && is_item(&lines[*at]) {
            let rest = lines[*at].text[1..].trim_start().to_owned();
            if rest.is_empty() {
                *at += 1;
                let child = lines.get(*at).map_or(indent, |l| l.indent);
                items.push(parse_block(lines, at, child)?);
            } else if split_key(&rest).is_some() && !rest.starts_with(['!', '"', '\'', '[']) {
                // `- key: value` starts a map whose keys line up with `key`.
                let inner = indent + (lines[*at].text.len() - rest.len());
                lines[*at] = Line {
                    indent: inner,
                    text: rest,
                };
                items.push(parse_block(lines, at, inner)?);
            } else {
                *at += 1;
                items.push(scalar(&rest));
            }
        }
        return Ok(Yaml::Seq(items));
    }
    let mut entries = Vec::new();
    while *at < lines.len() && lines[*at].indent == indent && !is_item(&lines[*at]) {
        let text = lines[*at].text.clone();
        let (key, value) =
            split_key(&text).ok_or_else(|| format!("expected `key: value`, got {text:?}"))?;
        *at += 1;
        let tag_only = value.starts_with('!') && !value.contains(' ');
        let value = if value.is_empty() || tag_only {
            match lines.get(*at) {
                Some(next) if next.indent > indent => {
                    let child = next.indent;
                    parse_block(lines, at, child)?
                }
                Some(next) if next.indent == indent && is_item(next) => {
                    parse_block(lines, at, indent)?
                }
                _ => Yaml::Scalar(value.to_owned()),
            }
        } else {
            scalar(value)
        };
        entries.push((key, value));
    }
    if *at < lines.len() && lines[*at].indent > indent {
        return Err(format!("unexpected indentation at {:?}", lines[*at].text));
    }
    Ok(Yaml::Map(entries))
}

/// What a function's role may do, as far as this test can read it.
#[derive(Debug, Default)]
struct Grants {
    actions: BTreeSet<String>,
    resources: BTreeSet<String>,
}

fn grants(template: &Yaml, function: &str) -> Result<Grants, String> {
    let properties = template
        .path(&["Resources", function, "Properties"])
        .ok_or_else(|| format!("template.yaml has no Resources.{function}.Properties"))?;
    if properties.get("Role").is_some() {
        return Err(format!(
            "{function} names its own Role: read that role's policies here (extend tests/it/iam.rs)"
        ));
    }
    let mut grants = Grants::default();
    let Some(policies) = properties.get("Policies") else {
        return Ok(grants);
    };
    for policy in policies.items() {
        let statements = policy.get("Statement").ok_or_else(|| {
            format!(
                "{function}: a Policies entry this test cannot read (a managed policy or a SAM \
                 policy template grants actions it cannot see: use a Statement, or extend \
                 tests/it/iam.rs): {policy:?}"
            )
        })?;
        for statement in statements.items() {
            let effect = statement.get("Effect").and_then(Yaml::scalar);
            if effect != Some("Allow") {
                return Err(format!("{function}: a statement that is not Effect: Allow"));
            }
            let actions = statement
                .get("Action")
                .ok_or(format!("{function}: a statement without Action"))?;
            for action in actions.items() {
                let action = action.scalar().ok_or("an Action that is not text")?;
                grants.actions.insert(action.to_owned());
            }
            let resources = statement
                .get("Resource")
                .ok_or(format!("{function}: a statement without Resource"))?;
            for resource in resources.items() {
                let resource = resource.scalar().ok_or("a Resource that is not text")?;
                grants.resources.insert(resource.to_owned());
            }
        }
    }
    Ok(grants)
}

/// Compares a function's grants with its calls; the error lists every difference.
fn check(template: &Yaml, function: &str, calls: &Calls) -> Result<(), String> {
    let grants = grants(template, function)?;
    let mut problems = Vec::new();
    let extra: Vec<_> = grants.actions.difference(&calls.actions).collect();
    if !extra.is_empty() {
        problems.push(format!("granted but never called: {extra:?}"));
    }
    let missing: Vec<_> = calls.actions.difference(&grants.actions).collect();
    if !missing.is_empty() {
        problems.push(format!("called but not granted: {missing:?}"));
    }

    // Resources: the table the function is given (TABLE_NAME: !Ref <Table>), and its
    // indexes when the code queries one; never a wildcard.
    let table = template
        .path(&[
            "Resources",
            function,
            "Properties",
            "Environment",
            "Variables",
            "TABLE_NAME",
        ])
        .and_then(Yaml::scalar)
        .and_then(|v| v.strip_prefix("!Ref "))
        .ok_or(format!("{function}: TABLE_NAME is not `!Ref <table>`"))?;
    let mut expected = BTreeSet::from([format!("!GetAtt {table}.Arn")]);
    if calls.uses_index {
        let indexes = template
            .path(&["Resources", table, "Properties", "GlobalSecondaryIndexes"])
            .map(Yaml::items)
            .unwrap_or_default();
        for index in indexes {
            let name = index.get("IndexName").and_then(Yaml::scalar).unwrap_or("?");
            expected.insert(format!("!Sub ${{{table}.Arn}}/index/{name}"));
        }
    }
    let wildcards: Vec<_> = grants
        .resources
        .iter()
        .filter(|r| r.contains('*'))
        .collect();
    if !wildcards.is_empty() {
        problems.push(format!("wildcard resources: {wildcards:?}"));
    }
    if grants.resources != expected {
        problems.push(format!(
            "resources are {:?}, expected exactly {expected:?}",
            grants.resources
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{function}: {}", problems.join("; ")))
    }
}

fn template() -> Yaml {
    parse_yaml(&read(&root().join("template.yaml"))).unwrap()
}

/// Each function of the template: its logical id, and the source file of its binary's `main`
/// (`Metadata.BuildProperties.Binary`, found among Cargo.toml's `[[bin]]`s).
fn functions_of(template: &Yaml) -> Result<Vec<(String, String)>, String> {
    let manifest = read(&root().join("Cargo.toml"));
    let bins: BTreeMap<String, String> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|section| {
            let section = section.split("\n[").next().unwrap_or_default();
            let field = |key: &str| {
                section.lines().find_map(|l| {
                    let (k, v) = l.split_once('=')?;
                    (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
                })
            };
            Some((field("name")?, field("path")?))
        })
        .collect();
    let Some(Yaml::Map(resources)) = template.get("Resources") else {
        return Err("template.yaml has no Resources".into());
    };
    let mut out = Vec::new();
    for (id, resource) in resources {
        match resource.get("Type").and_then(Yaml::scalar) {
            Some("AWS::Serverless::Function") => {}
            Some("AWS::Lambda::Function") => {
                return Err(format!(
                    "{id} is an AWS::Lambda::Function: extend tests/it/iam.rs"
                ))
            }
            _ => continue,
        }
        let binary = resource
            .path(&["Metadata", "BuildProperties", "Binary"])
            .and_then(Yaml::scalar)
            .ok_or(format!("{id} has no Metadata.BuildProperties.Binary"))?;
        let path = bins.get(binary).ok_or(format!(
            "{id} builds {binary}, which Cargo.toml has no [[bin]] for"
        ))?;
        out.push((id.clone(), path.clone()));
    }
    Ok(out)
}

#[test]
fn each_function_is_granted_exactly_the_dynamodb_actions_its_code_calls() {
    let template = template();
    let functions = functions_of(&template).unwrap();
    assert!(
        functions.contains(&("WebhookFunction".into(), "src/main.rs".into())),
        "{functions:?}"
    );
    for (function, entry) in &functions {
        let calls = calls_from(&binary_files(entry)).unwrap();
        assert!(
            !calls.actions.is_empty(),
            "{function}: no DynamoDB call found from {entry}: the scanner is broken"
        );
        if let Err(problems) = check(&template, function, &calls) {
            panic!(
                "{problems}\n(code reachable from {entry} calls {:?})",
                calls.actions
            );
        }
    }
}

#[test]
fn the_webhook_function_calls_what_store_rs_says() {
    // Pinned once by hand, so a scanner that silently finds less fails here.
    let calls = calls_from(&binary_files("src/main.rs")).unwrap();
    let expected = [
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
    ];
    assert_eq!(calls.actions, expected.map(String::from).into());
    assert!(calls.uses_index);
    // The dev tool's calls are reachable from its own main only.
    let tool = calls_from(&binary_files("src/bin/create_table.rs")).unwrap();
    assert_eq!(
        tool.actions,
        ["dynamodb:CreateTable", "dynamodb:UpdateTimeToLive"]
            .map(String::from)
            .into()
    );
    assert!(!tool.uses_index, "defining an index is not reading it");
}

#[test]
fn the_scanner_skips_comments_strings_tests_and_unreached_code() {
    let dir = std::env::temp_dir().join(format!("iam-scan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let main = dir.join("main.rs");
    std::fs::write(
        &main,
        r##"
        use aws_sdk_dynamodb::Client;
        // client.scan()
        fn main() { let s = "client.delete_item()"; let r = r#"x.update_item()"#; let c = '{';
            helper(c); Store::write(); }
        fn helper(_: char) { client.get_item().send(); }
        fn write() { client.transact_write_items().set_transact_items(items()); }
        fn items() { TransactWriteItem::builder()
            .condition_check(check).build();
            GlobalSecondaryIndex::builder().index_name("gsi1"); }
        fn unused() { client.batch_get_item(); client.query().index_name("gsi1"); }
        /* fn main() { client.delete_table() } */
        #[cfg(test)]
        mod tests { fn t() { main(); client.describe_table(); } }
        "##,
    )
    .unwrap();
    let calls = calls_from(&[main]).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        calls.actions,
        ["dynamodb:ConditionCheckItem", "dynamodb:GetItem"]
            .map(String::from)
            .into()
    );
    assert!(!calls.uses_index);
}

#[test]
fn a_policy_with_an_extra_or_missing_action_or_a_wildcard_fails() {
    let text = read(&root().join("template.yaml"));
    let calls = calls_from(&binary_files("src/main.rs")).unwrap();
    let edited = |from: &str, to: &str| {
        assert!(text.contains(from), "template.yaml no longer has {from:?}");
        parse_yaml(&text.replacen(from, to, 1)).unwrap()
    };
    let err = check(
        &edited("- dynamodb:GetItem\n", "- dynamodb:Scan\n"),
        "WebhookFunction",
        &calls,
    )
    .unwrap_err();
    assert!(
        err.contains(r#"granted but never called: ["dynamodb:Scan"]"#),
        "{err}"
    );
    assert!(
        err.contains(r#"called but not granted: ["dynamodb:GetItem"]"#),
        "{err}"
    );
    let err = check(
        &edited("- !GetAtt Table.Arn\n", "- \"*\"\n"),
        "WebhookFunction",
        &calls,
    )
    .unwrap_err();
    assert!(err.contains(r#"wildcard resources: ["*"]"#), "{err}");
    let err = check(
        &edited("                - !Sub \"${Table.Arn}/index/gsi1\"\n", ""),
        "WebhookFunction",
        &calls,
    )
    .unwrap_err();
    assert!(err.contains("expected exactly"), "{err}");
    let err = check(
        &edited("        - Statement:\n", "        - DynamoDBCrudPolicy:\n            TableName: !Ref Table\n        - Statement:\n"),
        "WebhookFunction",
        &calls,
    )
    .unwrap_err();
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn the_yaml_reader_reads_template_yaml() {
    let template = template();
    let function = template
        .path(&["Resources", "WebhookFunction", "Properties"])
        .unwrap();
    assert_eq!(
        function.path(&["FunctionUrlConfig", "AuthType"]),
        Some(&Yaml::Scalar("NONE".into()))
    );
    assert_eq!(
        function.get("Architectures"),
        Some(&Yaml::Seq(vec![Yaml::Scalar("arm64".into())]))
    );
    let secret = function
        .path(&["Environment", "Variables", "CLERK_WEBHOOK_SIGNING_SECRET"])
        .unwrap();
    assert!(
        matches!(secret, Yaml::Seq(items) if items.len() == 3),
        "{secret:?}"
    );
    assert!(template
        .path(&["Parameters", "LogLevel", "AllowedValues"])
        .is_some_and(|v| v.items().len() == 6));
    assert!(template
        .path(&["Description"])
        .and_then(Yaml::scalar)
        .is_some_and(|d| d.starts_with("clerk-webhooks: verifies")));
}
