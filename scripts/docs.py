#!/usr/bin/env python3
"""Builds docs/reference.md from docs/reference.src.md by running every ```sql block with
psql and inserting its real output after it, so the examples in the reference always run.

    python3 scripts/docs.py PSQL_ARGS...         write docs/reference.md
    python3 scripts/docs.py --check PSQL_ARGS... fail if docs/reference.md is out of date

PSQL_ARGS connect to a database where `CREATE EXTENSION rfm_segmentation` may be run, e.g.
`-h /tmp/sock -p 55432 -U postgres -d rfm_docs`. All blocks run in one session.
"""
import re
import subprocess
import sys

check = "--check" in sys.argv
args = [a for a in sys.argv[1:] if a != "--check"]
root = __file__.rsplit("/scripts/", 1)[0]
src = open(f"{root}/docs/reference.src.md").read()
blocks = re.findall(r"```sql\n(.*?)```", src, re.S)
marker = "-- rfm-docs-block --"
script = "\\set SHOW_CONTEXT never\nSET TimeZone = 'UTC';\nDROP EXTENSION IF EXISTS rfm_segmentation CASCADE;\n" \
    "DROP SCHEMA IF EXISTS rfm CASCADE;\nDROP TABLE IF EXISTS shop, stages_shop, moves_shop, clv_orders, clv;\n" \
    "CREATE EXTENSION rfm_segmentation;\n"
for b in blocks:
    script += f"\\echo {marker}\n{b}\n"
out = subprocess.run(["psql", "-X", "-q", "-P", "footer=off", *args],
                     input=script, capture_output=True, text=True)
if out.returncode != 0:
    sys.exit(out.stderr)
# stderr (errors) interleaves with stdout in order only when merged; run again merged
merged = subprocess.run(["psql", "-X", "-q", "-P", "footer=off", *args],
                        input=script, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
parts = merged.stdout.split(marker + "\n")[1:]
if len(parts) != len(blocks):
    sys.exit(f"expected {len(blocks)} outputs, got {len(parts)}:\n{merged.stdout}")
it = iter(parts)


def fill(m):
    res = next(it).rstrip()
    res = "\n".join(line.rstrip() for line in res.splitlines())
    res = re.sub(r"psql:<stdin>:\d+: ", "", res)
    return f"```sql\n{m.group(1)}```\n\n```text\n{res}\n```" if res else f"```sql\n{m.group(1)}```"


doc = "<!-- generated from docs/reference.src.md by scripts/docs.py; edit that file -->\n" + \
    re.sub(r"```sql\n(.*?)```", fill, src, flags=re.S)
target = f"{root}/docs/reference.md"
if check:
    have = open(target).read()
    if have != doc:
        import difflib
        sys.stderr.writelines(list(difflib.unified_diff(
            have.splitlines(keepends=True), doc.splitlines(keepends=True),
            "docs/reference.md", "what the examples print now"))[:80])
        sys.exit("docs/reference.md is out of date: run python3 scripts/docs.py")
    print("docs/reference.md is up to date")
else:
    open(target, "w").write(doc)
    print(f"wrote {target} ({len(blocks)} examples)")
