//! The welcome email's subject and body: text with `{{first_name}}`, `{{last_name}}`,
//! `{{name}}` and `{{email}}`, filled from the user's item. Values are HTML-escaped in HTML;
//! a missing value is empty. A template is checked once, when the configuration is read, so a
//! typo in a placeholder is a clear configuration error, not an email that says `{{frist_name}}`.

use super::change::Person;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Part>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    FirstName,
    LastName,
    /// First and last name, as many as there are.
    Name,
    Email,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(Field),
}

/// What is wrong with a template. Names the placeholder, never the template's other text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown placeholder {{{{{0}}}}}: use first_name, last_name, name or email")]
    Unknown(String),
    #[error("a {{{{ is never closed")]
    Unclosed,
}

/// How values are written into the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// A subject line: plain text.
    None,
    /// An HTML body: `&`, `<`, `>`, `"` and `'` become entities.
    Html,
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or(TemplateError::Unclosed)?;
            let field = match after[..close].trim() {
                "first_name" => Field::FirstName,
                "last_name" => Field::LastName,
                "name" => Field::Name,
                "email" => Field::Email,
                other => return Err(TemplateError::Unknown(other.to_owned())),
            };
            parts.push(Part::Field(field));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self(parts))
    }

    pub fn render(&self, person: &Person, escape: Escape) -> String {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(field) => {
                    let value = value(person, *field);
                    match escape {
                        Escape::None => out.push_str(&value),
                        Escape::Html => push_escaped(&mut out, &value),
                    }
                }
            }
        }
        out
    }
}

fn value(person: &Person, field: Field) -> String {
    let first = person.first_name.as_deref().unwrap_or("").trim();
    let last = person.last_name.as_deref().unwrap_or("").trim();
    match field {
        Field::FirstName => first.to_owned(),
        Field::LastName => last.to_owned(),
        Field::Name => [first, last]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" "),
        Field::Email => person.email.clone().unwrap_or_default(),
    }
}

fn push_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(first: Option<&str>, last: Option<&str>) -> Person {
        Person {
            user_id: "user_1".into(),
            email: Some("ada@example.org".into()),
            first_name: first.map(str::to_owned),
            last_name: last.map(str::to_owned),
        }
    }

    #[test]
    fn placeholders_are_filled_and_escaped_in_html() {
        let html = Template::parse("<p>Hi {{first_name}}, welcome ({{ email }}).</p>").unwrap();
        assert_eq!(
            html.render(&person(Some("Ada"), Some("Lovelace")), Escape::Html),
            "<p>Hi Ada, welcome (ada@example.org).</p>"
        );
        let hostile = person(Some("<script>alert('x')</script>"), Some("O\"Brien & Co"));
        let body = Template::parse("<p>{{name}}</p>").unwrap();
        assert_eq!(
            body.render(&hostile, Escape::Html),
            "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; O&quot;Brien &amp; Co</p>"
        );
        let subject = Template::parse("Welcome, {{name}}!").unwrap();
        assert_eq!(
            subject.render(&hostile, Escape::None),
            "Welcome, <script>alert('x')</script> O\"Brien & Co!"
        );
    }

    #[test]
    fn missing_names_leave_no_gaps() {
        let t = Template::parse("Hi {{name}}|{{first_name}}|{{last_name}}").unwrap();
        assert_eq!(
            t.render(&person(Some("Ada"), None), Escape::None),
            "Hi Ada|Ada|"
        );
        assert_eq!(
            t.render(&person(None, Some(" Byron ")), Escape::None),
            "Hi Byron||Byron"
        );
        assert_eq!(t.render(&person(None, None), Escape::None), "Hi ||");
        assert_eq!(
            Template::parse("no placeholders")
                .unwrap()
                .render(&person(None, None), Escape::Html),
            "no placeholders"
        );
    }

    #[test]
    fn a_bad_placeholder_is_a_clear_error() {
        assert_eq!(
            Template::parse("Hi {{frist_name}}")
                .unwrap_err()
                .to_string(),
            "unknown placeholder {{frist_name}}: use first_name, last_name, name or email"
        );
        assert_eq!(
            Template::parse("Hi {{first_name").unwrap_err(),
            TemplateError::Unclosed
        );
        assert_eq!(
            Template::parse("Hi {{first_name").unwrap_err().to_string(),
            "a {{ is never closed"
        );
    }
}
