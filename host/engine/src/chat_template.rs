//! Chat templates: the Jinja template a model's makers ship (in
//! `tokenizer_config.json`, a `--chat-template` file or the GGUF), rendered as
//! transformers' `apply_chat_template` renders it.
//!
//! transformers runs templates in Python's Jinja2, so templates in the wild
//! call Python's string and dict methods (`startswith`, `split`, `strip`,
//! `items`): minijinja-contrib's `pycompat` supplies them. The globals are
//! transformers': `messages`, `add_generation_prompt`, the special tokens
//! (`bos_token`, `eos_token`, `pad_token`, ...), `raise_exception`,
//! `strftime_now`, and `tools` and `documents` as none; its `tojson` (Python's
//! `json.dumps`, not HTML-escaped); `trim_blocks` and `lstrip_blocks`.
//! A template that cannot render names its source, line and construct.

use crate::EngineError;
use lem_core::ChatMessage;
use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, ErrorKind, Value, context};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    origin: String,
}

/// Special tokens a template may use, by the names transformers passes them
/// (`bos_token`, `eos_token`, `unk_token`, `pad_token`, ...).
pub type SpecialTokens = BTreeMap<String, String>;

impl ChatTemplate {
    /// Compiles `source`; `origin` says where it came from (a file, or a file
    /// and key) for error messages.
    pub fn new(source: &str, origin: &str, tokens: &SpecialTokens) -> Result<Self, EngineError> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| EngineError::BadTemplate(e.to_string()))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_function("strftime_now", |format: String| {
            strftime(&format, unix_now())
        });
        env.add_filter("tojson", tojson);
        for (name, text) in tokens {
            env.add_global(name.clone(), text.clone());
        }
        env.add_global("tools", Value::from(()));
        env.add_global("documents", Value::from(()));
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| {
                EngineError::BadTemplate(describe(&e, source, origin, "does not compile"))
            })?;
        Ok(ChatTemplate {
            env,
            source: source.to_string(),
            origin: origin.to_string(),
        })
    }

    /// The template's source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders a conversation; with `add_generation_prompt` the text ends
    /// where the model's answer begins.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, EngineError> {
        self.render_with(messages, add_generation_prompt, &serde_json::Map::new())
    }

    /// [`render`](Self::render) with further template variables, as
    /// transformers passes `apply_chat_template`'s extra keyword arguments
    /// (e.g. Llama 3.1's `date_string`).
    pub fn render_with(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        extra: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, EngineError> {
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| EngineError::BadTemplate(e.to_string()))?;
        template
            .render(context! {
                messages => Value::from(minijinja::value::Serde(messages)),
                add_generation_prompt => add_generation_prompt,
                ..Value::from(minijinja::value::Serde(extra))
            })
            .map_err(|e| {
                EngineError::BadTemplate(describe(
                    &e,
                    &self.source,
                    &self.origin,
                    "cannot render the conversation",
                ))
            })
    }
}

impl ChatTemplate {
    /// Compiles the template in a Jinja file.
    pub fn from_file(path: &Path, tokens: &SpecialTokens) -> Result<Self, EngineError> {
        let source =
            std::fs::read_to_string(path).map_err(|e| EngineError::Io(path.to_owned(), e))?;
        ChatTemplate::new(&source, &path.display().to_string(), tokens)
    }
}

/// The special tokens transformers hands a chat template, by name.
const SPECIAL_TOKENS: &[&str] = &[
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
];

/// A Hugging Face `tokenizer_config.json`: special tokens and chat template.
#[derive(Debug, Clone)]
pub struct TokenizerConfig {
    path: PathBuf,
    value: serde_json::Value,
}

impl TokenizerConfig {
    /// Reads `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<Self, EngineError> {
        let value = if path.is_file() {
            let text =
                std::fs::read_to_string(path).map_err(|e| EngineError::Io(path.to_owned(), e))?;
            serde_json::from_str(&text).map_err(|e| EngineError::BadFile {
                path: path.to_owned(),
                reason: format!("not JSON: {e}"),
            })?
        } else {
            serde_json::Value::Null
        };
        Ok(TokenizerConfig {
            path: path.to_owned(),
            value,
        })
    }

    /// A special token's text: `"<s>"` or `{"content": "<s>", ...}`.
    pub fn token(&self, key: &str) -> Option<String> {
        match self.value.get(key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            v => v
                .get("content")
                .and_then(|c| c.as_str())
                .map(str::to_string),
        }
    }

    /// The special tokens the config names, as a template sees them.
    pub fn special_tokens(&self) -> SpecialTokens {
        SPECIAL_TOKENS
            .iter()
            .filter_map(|&name| Some((name.to_string(), self.token(name)?)))
            .collect()
    }

    /// The config's chat template, compiled: its `chat_template` string, or
    /// the one named `default` in a list of named templates.
    pub fn chat_template(&self) -> Result<Option<ChatTemplate>, EngineError> {
        let source = match self.value.get("chat_template") {
            Some(serde_json::Value::String(s)) => s.as_str(),
            Some(serde_json::Value::Array(named)) => match named
                .iter()
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                .and_then(|t| t.get("template")?.as_str())
            {
                Some(s) => s,
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
        let origin = format!("{} (chat_template)", self.path.display());
        ChatTemplate::new(source, &origin, &self.special_tokens()).map(Some)
    }
}

/// `ORIGIN, line N: WHAT: DETAIL (at `CONSTRUCT`); pass --chat-template FILE ...`.
fn describe(e: &minijinja::Error, source: &str, origin: &str, what: &str) -> String {
    let detail = e
        .detail()
        .map_or_else(|| e.kind().to_string(), str::to_string);
    let mut out = match e.line() {
        Some(line) => format!("{origin}, line {line}: {what}: {detail}"),
        None => format!("{origin}: {what}: {detail}"),
    };
    if let Some(construct) = e.range().and_then(|r| source.get(r)) {
        let construct: String = construct.chars().take(120).collect();
        out.push_str(&format!(" (at `{}`)", construct.escape_debug()));
    }
    if e.kind() != ErrorKind::InvalidOperation {
        // Not the template's own raise_exception: lem cannot run this template.
        out.push_str("; pass --chat-template FILE with a template lem can render");
    }
    out
}

/// transformers' `tojson`: Python's `json.dumps` with `ensure_ascii=False`:
/// `", "` and `": "` between items (`","` with an indent), keys in order,
/// nothing HTML-escaped.
fn tojson(value: Value, kwargs: Kwargs) -> Result<Value, minijinja::Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let _ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    kwargs.assert_all_used()?;
    let mut out = String::new();
    write_json(&mut out, &value, indent, sort_keys.unwrap_or(false), 0)?;
    Ok(Value::from_safe_string(out))
}

fn write_json(
    out: &mut String,
    value: &Value,
    indent: Option<usize>,
    sort_keys: bool,
    depth: usize,
) -> Result<(), minijinja::Error> {
    let newline = |out: &mut String, depth: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * depth));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => out.push_str(&value.to_string()),
        ValueKind::String | ValueKind::Bytes => {
            write_json_string(out, value.as_str().unwrap_or_default())
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                write_json(out, item, indent, sort_keys, depth + 1)?;
            }
            if !items.is_empty() {
                newline(out, depth);
            }
            out.push(']');
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = value.try_iter()?.collect();
            if sort_keys {
                keys.sort();
            }
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                match key.as_str() {
                    Some(k) => write_json_string(out, k),
                    None => write_json_string(out, &key.to_string()),
                }
                out.push_str(": ");
                write_json(out, &value.get_item(key)?, indent, sort_keys, depth + 1)?;
            }
            if !keys.is_empty() {
                newline(out, depth);
            }
            out.push('}');
        }
        _ => {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("tojson: cannot serialize a {}", value.kind()),
            ));
        }
    }
    Ok(())
}

fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Python's `strftime` for UTC time `secs`, for the directives date-stamping
/// templates use: `%d %m %Y %y %b %B %a %A %H %M %S %j %e %%`. Others are an
/// error, not a silent wrong date.
fn strftime(format: &str, secs: i64) -> Result<String, minijinja::Error> {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let days = secs.div_euclid(86_400);
    let time = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday.
    let day_of_year = days - days_from_civil(year, 1, 1) + 1;
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let month_name = MONTHS[month as usize - 1];
        match chars.next() {
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('e') => out.push_str(&format!("{day:2}")),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year.rem_euclid(100))),
            Some('b') => out.push_str(&month_name[..3]),
            Some('B') => out.push_str(month_name),
            Some('a') => out.push_str(&DAYS[weekday][..3]),
            Some('A') => out.push_str(DAYS[weekday]),
            Some('H') => out.push_str(&format!("{:02}", time / 3600)),
            Some('M') => out.push_str(&format!("{:02}", time / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", time % 60)),
            Some('j') => out.push_str(&format!("{day_of_year:03}")),
            Some('%') => out.push('%'),
            other => {
                return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "strftime_now: lem does not support the directive %{}",
                        other.map(String::from).unwrap_or_default()
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The prompt for a base (pre-trained) model without a chat template, as the
/// upstream harness builds it: system text, blank line, the user turns,
/// blank line, `Answer:`.
pub fn base_prompt(messages: &[ChatMessage]) -> String {
    let mut parts: Vec<&str> = messages
        .iter()
        .filter(|m| m.role != "assistant")
        .map(|m| m.content.trim())
        .collect();
    parts.retain(|p| !p.is_empty());
    format!("{}\n\nAnswer:", parts.join("\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }

    fn tokens() -> SpecialTokens {
        [("bos_token", "<s>"), ("eos_token", "</s>")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn render(source: &str, messages: &[ChatMessage]) -> Result<String, EngineError> {
        ChatTemplate::new(source, "test.jinja", &tokens())?.render(messages, true)
    }

    #[test]
    fn python_string_and_dict_methods_work() {
        let source = "{% for m in messages %}{% if m.content.startswith('<think>') %}\
                      {{ m.content.split('</think>')[-1].strip() }}{% else %}\
                      {{ m.role.upper() }}:{{ m.content.rstrip() }}|{% endif %}{% endfor %}\
                      {% for k, v in {'a': 1}.items() %}{{ k }}={{ v }}{% endfor %}";
        let got = render(
            source,
            &[
                msg("user", "hi  "),
                msg("assistant", "<think>x</think> ok "),
            ],
        )
        .unwrap();
        assert_eq!(got, "USER:hi|oka=1");
    }

    #[test]
    fn transformers_globals_are_there() {
        let source = "{{ bos_token }}{{ tools is none }}{{ documents is none }}\
                      {{ add_generation_prompt }}{{ eos_token }}{{ date_string }}";
        let t = ChatTemplate::new(source, "t", &tokens()).unwrap();
        let extra = serde_json::json!({"date_string": "26 Jul 2024"});
        let got = t
            .render_with(&[], false, extra.as_object().unwrap())
            .unwrap();
        // Booleans print as Python prints them.
        assert_eq!(got, "<s>TrueTrueFalse</s>26 Jul 2024");
    }

    #[test]
    fn tojson_is_pythons_json_dumps() {
        let source = "{{ {'b': [1, 'x<y', none], 'a': {'q': true}} | tojson }}|\
                      {{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}|{{ [1, 2] | tojson(indent=2) }}";
        assert_eq!(
            render(source, &[]).unwrap(),
            "{\"b\": [1, \"x<y\", null], \"a\": {\"q\": true}}|{\"a\": 2, \"b\": 1}|[\n  1,\n  2\n]"
        );
    }

    #[test]
    fn strftime_covers_date_directives() {
        // 2024-07-26 13:05:09 UTC was a Friday, day 208 of a leap year.
        let t = 1_721_999_109;
        assert_eq!(
            strftime("%d %b %Y|%A %a|%B %m %y|%H:%M:%S|%j|%e|%%", t).unwrap(),
            "26 Jul 2024|Friday Fri|July 07 24|13:05:09|208|26|%"
        );
        assert_eq!(strftime("%Y-%m-%d", 0).unwrap(), "1970-01-01");
        assert_eq!(strftime("%Y-%m-%d %a", -86_400).unwrap(), "1969-12-31 Wed");
        assert!(strftime("%Q", t).is_err());
        for days in [-800_000, -1, 0, 59, 60, 11_016, 19_723, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn a_template_that_cannot_render_names_source_line_and_construct() {
        let source = "{% for m in messages %}\n{{ m.content.frobnicate() }}\n{% endfor %}";
        let e = render(source, &[msg("user", "x")]).unwrap_err().to_string();
        assert!(e.contains("test.jinja, line 2"), "{e}");
        assert!(e.contains("frobnicate"), "{e}");
        assert!(e.contains("--chat-template FILE"), "{e}");

        let e = ChatTemplate::new("{% if %}", "tokenizer_config.json", &tokens())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("tokenizer_config.json, line 1: does not compile"),
            "{e}"
        );
    }

    #[test]
    fn the_templates_own_exception_is_its_message() {
        let source = "{{ raise_exception('Conversation roles must alternate') }}";
        let e = render(source, &[]).unwrap_err().to_string();
        assert!(e.contains("Conversation roles must alternate"), "{e}");
        assert!(!e.contains("--chat-template"), "{e}");
    }
}
