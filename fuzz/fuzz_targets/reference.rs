//! Pack references, store locations, pack specs and dependency requirements as users and
//! manifests write them. Properties: no panic; whatever parses prints (Display) to a string that
//! parses to the same value; tag selection only returns a published tag that satisfies the
//! request.
#![no_main]

use aibox_pkgmgr::resolve::{PackSpec, VersionReq, select_tag};
use aibox_pkgmgr::{PackRef, StoreLocation};
use aibox_schema::{PackName, Requirement};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };

    if let Ok(r) = PackRef::parse(s) {
        let shown = r.to_string();
        let again = PackRef::parse(&shown).unwrap_or_else(|e| panic!("{s:?} parsed to {r:?}, shown as {shown:?}, which does not parse: {e}"));
        assert_eq!(again, r, "{s:?} shown as {shown:?}");
        // A reference with a target names it the same way in `pack_display`.
        if let Some(t) = &r.target {
            assert_eq!(r.store.pack_display(&r.name, t), shown);
            assert!(r.require_target().is_ok());
        }
        assert!(r.name.parse::<PackName>().is_ok(), "{s:?}: invalid pack name accepted");
    }

    if let Ok(l) = StoreLocation::parse(s) {
        let shown = l.to_string();
        let again = StoreLocation::parse(&shown).unwrap_or_else(|e| panic!("{s:?} parsed to {l:?}, shown as {shown:?}, which does not parse: {e}"));
        assert_eq!(again, l, "{s:?} shown as {shown:?}");
        let _ = (l.repository("hello"), l.docker_reference("hello"));
    }

    if let Ok(spec) = s.parse::<PackSpec>() {
        let shown = spec.to_string();
        let again: PackSpec = shown.parse().unwrap_or_else(|e| panic!("{s:?} parsed to {spec:?}, shown as {shown:?}, which does not parse: {e}"));
        assert_eq!(again, spec, "{s:?} shown as {shown:?}");
    }

    if let Ok(req) = Requirement::try_from(s.to_owned()) {
        let shown = req.to_string();
        assert_eq!(Requirement::try_from(shown.clone()).ok().as_ref(), Some(&req), "{s:?} shown as {shown:?}");
        let _ = VersionReq::from_dependency(req.version.as_deref());
    }

    if let Ok(name) = s.parse::<PackName>() {
        assert_eq!(name.to_string(), s);
    }

    // Tag selection over hostile tag lists: the first line is the request, the rest are tags.
    let mut lines = s.lines();
    if let Some(first) = lines.next()
        && let Ok(spec) = format!("p@{first}").parse::<PackSpec>()
    {
        let tags: Vec<String> = lines.map(str::to_owned).collect();
        if let Some(tag) = select_tag(&spec.req, &tags) {
            assert!(tags.iter().any(|t| t == tag), "selected {tag:?}, which is not published");
            match semver::Version::parse(&tag.replace('_', "+")) {
                Ok(v) => assert!(spec.req.matches(&v), "{tag} does not satisfy {spec}"),
                Err(_) => assert!(spec.req == VersionReq::Latest && tag == "latest", "non-version tag {tag:?} selected for {spec}"),
            }
        }
    }
});
