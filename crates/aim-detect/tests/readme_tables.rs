//! The README's tables are generated from the code's tables; this test fails when they differ
//! (set `AIM_DETECT_BLESS=1` to rewrite the README).

#![allow(clippy::unwrap_used)]

use aim_detect::tables;

fn replace_block(text: &str, name: &str, body: &str) -> String {
    let begin = format!("<!-- BEGIN GENERATED: {name} -->\n");
    let end = format!("<!-- END GENERATED: {name} -->");
    let start = text.find(&begin).unwrap_or_else(|| panic!("no {begin}")) + begin.len();
    let stop = text.find(&end).unwrap_or_else(|| panic!("no {end}"));
    format!("{}{}{}", &text[..start], body, &text[stop..])
}

#[test]
fn readme_tables_match_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let mut want = readme.clone();
    want = replace_block(&want, "vocabulary", &tables::vocabulary_markdown());
    want = replace_block(&want, "crates", &tables::crate_table_markdown());
    want = replace_block(&want, "actions", &tables::action_tables_markdown());
    if std::env::var_os("AIM_DETECT_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    assert!(
        readme == want,
        "README tables are stale: run AIM_DETECT_BLESS=1 cargo test -p aim-detect --test readme_tables"
    );
}
