//! `http` URLs: any text parses without panicking; a parsed URL prints
//! to text that parses to the same URL (as its documentation promises),
//! with a path that starts with `/`; and resolving a reference against
//! it gives a URL with the same property.
//!
//! Input: the base URL, then optionally a newline and the reference.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netstrata::application::http::client::Url;

fn check(url: &Url) {
    assert!(url.path().starts_with('/'), "path {:?}", url.path());
    let text = url.to_string();
    let again = Url::parse(&text).unwrap_or_else(|e| panic!("{text:?} does not parse: {e}"));
    assert_eq!(&again, url, "{text:?} parses to another URL");
    assert!(url.same_origin(&again));
    let _ = (url.request_target(), url.authority());
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (base, reference) = match text.split_once('\n') {
        Some((b, r)) => (b, Some(r)),
        None => (&*text, None),
    };
    let Ok(url) = Url::parse(base) else {
        return;
    };
    check(&url);
    if let Some(reference) = reference
        && let Ok(joined) = url.join(reference)
    {
        check(&joined);
    }
});
