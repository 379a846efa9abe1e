#!/usr/bin/env node
// Validates AsyncAPI documents with @asyncapi/parser (the parser AsyncAPI's own tools use).
// Usage: node tools/api-check/asyncapi-validate.mjs FILE...   (JSON or YAML)
// Prints each diagnostic; exits 1 when any document has an error-level diagnostic, or
// when it cannot be read or parsed at all. Warnings are printed but do not fail.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: asyncapi-validate.mjs FILE...");
  process.exit(2);
}

const severityName = {
  [DiagnosticSeverity.Error]: "error",
  [DiagnosticSeverity.Warning]: "warning",
  [DiagnosticSeverity.Information]: "info",
  [DiagnosticSeverity.Hint]: "hint",
};

const parser = new Parser();
let failed = false;
for (const file of files) {
  const absolute = path.resolve(file);
  let text;
  try {
    text = await readFile(absolute, "utf8");
  } catch (error) {
    console.error(`${file}: cannot read: ${error.message}`);
    failed = true;
    continue;
  }
  // `source` lets relative $refs resolve against the document's own folder.
  const { document, diagnostics } = await parser.parse(text, {
    source: pathToFileURL(absolute).href,
  });
  const counts = { error: 0, warning: 0, info: 0, hint: 0 };
  for (const diagnostic of diagnostics) {
    const severity = severityName[diagnostic.severity] ?? "error";
    counts[severity] += 1;
    const where = diagnostic.path?.length ? `#/${diagnostic.path.join("/")}` : "#";
    const line = diagnostic.range ? `:${diagnostic.range.start.line + 1}` : "";
    console.log(`${file}${line} ${severity} ${diagnostic.code}: ${diagnostic.message} at ${where}`);
  }
  if (document === undefined || counts.error > 0) failed = true;
  const version = document?.version() ?? "unparsed";
  console.log(
    `${file}: AsyncAPI ${version}: ${counts.error} error(s), ${counts.warning} warning(s)` +
      (document === undefined ? " (not a valid AsyncAPI document)" : ""),
  );
}
process.exit(failed ? 1 : 0);
