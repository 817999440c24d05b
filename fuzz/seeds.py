#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ from the repository's own examples: the
validator's example documents, a few of the differential test's corpus, the README's walkthrough, the
ext_authz tests' requests, platform archives built around those documents, and the clock tests'
timestamps and the template tests' strings. Run from the repository root; the output is committed, so this only needs running again
when the examples change."""
import gzip
import io
import json
import os
import re
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def write(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data)


def raw_const(source, name):
    """The text of `const NAME: &str = r#"..."#;` in a Rust file."""
    m = re.search(r'const ' + name + r': &str = r#"(.*?)"#;', source, re.S)
    return m.group(1).lstrip("\n")


def documents():
    tests = read("model/src/validate/tests.rs")
    example, minimal = raw_const(tests, "EXAMPLE"), raw_const(tests, "MINIMAL")
    readme = read("README.md")
    walkthrough = re.search(r"<<'YAML'\n(.*?)\nYAML\n", readme, re.S).group(1) + "\n"
    docs = {"example": example, "minimal": minimal, "readme": walkthrough}
    for name in ["header-regex-repetition-99999", "respond-header-newline", "vhost-sandbox-equals-main-ignoring-case"]:
        docs[name] = read(f"translate/tests/corpus/{name}.yaml")
    return docs


def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, payload):
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def entry(key, value):
    return field(1, key.encode()) + field(2, value.encode())


def check_request(ext, headers, path):
    """An encoded CheckRequest: attributes(1){request(4){http(2){headers(3), path(4)}}, context_extensions(10)}."""
    http = b"".join(field(3, entry(k, v)) for k, v in headers) + field(4, path.encode())
    attributes = field(4, field(2, http)) + b"".join(field(10, entry(k, v)) for k, v in ext)
    return field(1, attributes)


def check_request_header_map(ext, headers, path):
    """As above with the headers in header_map(13){headers(1){key(1), raw_value(3)}}."""
    header_map = b"".join(field(1, field(1, k.encode()) + field(3, v.encode())) for k, v in headers)
    http = field(13, header_map) + field(4, path.encode())
    attributes = field(4, field(2, http)) + b"".join(field(10, entry(k, v)) for k, v in ext)
    return field(1, attributes)


def zip_entry(name, compression=zipfile.ZIP_DEFLATED):
    """An entry with a fixed date, so the seeds are the same on every run."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = compression
    return info


def main():
    docs = documents()
    for name, text in docs.items():
        write("document", f"{name}.yaml", b"\x00" + text.encode())
    # The JSON form of a document (the stored form): converted by hand from the minimal one.
    minimal_json = {
        "metadata": {"name": "weather"},
        "spec": {
            "displayName": "Weather",
            "version": "v1.0",
            "context": "/weather/$version",
            "upstream": {"main": {"url": "http://sample-backend:9080/api/v2"}},
            "operations": [{"method": "GET", "path": "/{country_code}/{city}"}],
        },
    }
    write("document", "minimal.json", b"\x01" + json.dumps(minimal_json).encode())

    header_route = [("tollgate.api", "orders"), ("tollgate.key_in", "header"), ("tollgate.key_name", "x-api-key")]
    query_route = [("tollgate.api", "orders"), ("tollgate.key_in", "query"), ("tollgate.key_name", "key")]
    write("authz_check", "header-good", check_request(header_route + [("tollgate.strip", "true")], [("x-api-key", "apip_good")], "/orders"))
    write("authz_check", "header-expired", check_request(header_route, [("x-api-key", "apip_old")], "/orders"))
    write("authz_check", "header-map", check_request_header_map(header_route, [("X-Api-Key", " apip_good ")], "/orders"))
    write("authz_check", "query-good", check_request(query_route, [], "/orders?a=1&key=apip_good#f"))
    write("authz_check", "no-key", check_request(header_route, [("accept", "*/*")], "/orders"))

    # authz_wire reads its input as a description of a request: any bytes will do as a start.
    write("authz_wire", "zeros", bytes(64))
    write("authz_wire", "ramp", bytes(range(256)))

    example = docs["example"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zip_entry("README.txt"), "not the document")
        z.writestr(zip_entry("inventory-v2.1.yaml"), example)
    write("archive", "single.zip", b"\x00" + buf.getvalue())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(zip_entry("api.yml", zipfile.ZIP_STORED), docs["minimal"])
    write("archive", "stored.zip", b"\x00" + buf.getvalue())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for path, text in [
            ("0190f1b2-0000-7000-8000-000000000001/api-0190f1b2-0000-7000-8000-0000000000aa.yaml", example),
            ("./0190f1b2-0000-7000-8000-000000000002/rest-api-0190f1b2-0000-7000-8000-0000000000bb.yml", docs["readme"]),
            ("0190f1b2-0000-7000-8000-000000000003/notes.txt", "skipped"),
        ]:
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mtime = len(data), 0
            t.addfile(info, io.BytesIO(data))
    write("archive", "batch.tar.gz", b"\x01" + gzip.compress(buf.getvalue(), mtime=0))

    for i, ts in enumerate([
        "2026-03-04T10:30:00Z",
        "2026-03-04T10:30:00.123456789Z",
        "2026-03-04T16:00:00+05:30",
        "1970-01-01T00:00:00Z",
        "2026-03-04 10:30:00.12-08:00",
    ]):
        write("timestamp", f"ts-{i}", ts.encode())

    for i, t in enumerate([
        'http://{{ env "HOST" }}:8080/x',
        'Bearer {{ secret "token" }}',
        '{{ default "x" (env "NOPE") }}',
        '{{ env "NOPE" | default `raw` }}',
        'a {{- secret "token" -}} b {{ default "q\\"" (secret "gone") }}',
    ]):
        write("template", f"t-{i}", t.encode())


if __name__ == "__main__":
    main()
