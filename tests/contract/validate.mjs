// validate.mjs - the contract test: the C codecs (through the ev_samples program) and the JSON
// Schemas of schemas/events/ (through ajv, draft 2020-12) must agree on every sample.
//
//   node validate.mjs --samples <ev_samples> --schemas <dir> --good <jsonl> --bad <jsonl>
//
// 1. Every line ev_samples prints (one envelope per event type) is valid for ajv: the envelope
//    against envelope.v1.json, its data against the schema its dataschema names; every type of
//    the envelope schema has exactly one sample, and every data schema file is used.
// 2. The lines of --good are accepted by both ajv and the C decoder (`ev_samples --check`).
// 3. The lines of --bad are rejected by both.
// In the .jsonl files, blank lines and lines starting with '#' are comments; a comment right
// before a sample names it in failure messages.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) throw new Error(`bad argument ${argv[i]}`);
    args[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of ['samples', 'schemas', 'good', 'bad']) if (!args[k]) throw new Error(`missing --${k}`);
  return args;
}

function readJsonl(file) {
  const out = [];
  let label = '';
  readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    if (line.startsWith('#')) { label = line.slice(1).trim(); return; }
    out.push({ line, name: `${file.split('/').pop()}:${i + 1}${label ? ` (${label})` : ''}` });
    label = '';
  });
  return out;
}

const args = parseArgs(process.argv.slice(2));
const ajv = new Ajv2020({ allErrors: true, strict: true });
addFormats(ajv);
const schemaFiles = readdirSync(args.schemas).filter((f) => f.endsWith('.json')).sort();
for (const f of schemaFiles) {
  const schema = JSON.parse(readFileSync(join(args.schemas, f), 'utf8'));
  if (schema.$id !== `schemas/events/${f}`) throw new Error(`${f}: $id must be schemas/events/${f}`);
  ajv.addSchema(schema);
}
const envelope = ajv.getSchema('schemas/events/envelope.v1.json');
if (!envelope) throw new Error('envelope.v1.json is missing');

// ajv's verdict on one record: null when valid, else the reason.
function ajvReject(line) {
  let env;
  try { env = JSON.parse(line); } catch (e) { return `not JSON: ${e.message}`; }
  if (!envelope(env)) return `envelope: ${ajv.errorsText(envelope.errors)}`;
  const data = ajv.getSchema(env.dataschema);
  if (!data) return `no schema ${env.dataschema}`;
  if (!data(env.data)) return `data: ${ajv.errorsText(data.errors, { dataVar: 'data' })}`;
  return null;
}

// The C decoder's verdicts, one per line.
function cVerdicts(lines) {
  const r = spawnSync(args.samples, ['--check'], { input: lines.join('\n') + '\n', encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`ev_samples --check failed: ${r.status} ${r.stderr}`);
  const out = r.stdout.split('\n').slice(0, -1);
  if (out.length !== lines.length) throw new Error(`ev_samples --check gave ${out.length} verdicts for ${lines.length} lines`);
  return out;
}

const failures = [];
const fail = (msg) => failures.push(msg);

// 1. The samples.
const gen = spawnSync(args.samples, [], { encoding: 'utf8' });
if (gen.status !== 0) throw new Error(`ev_samples failed: ${gen.stderr}`);
const samples = gen.stdout.split('\n').filter((l) => l !== '').map((line, i) => ({ line, name: `sample ${i + 1}` }));
const types = envelope.schema.properties.type.enum;
const seen = new Map();
const usedSchemas = new Set(['envelope.v1.json']);
for (const s of samples) {
  const env = JSON.parse(s.line);
  s.name = `sample ${env.type}`;
  seen.set(env.type, (seen.get(env.type) || 0) + 1);
  usedSchemas.add(env.dataschema.replace('schemas/events/', ''));
}
for (const t of types) if (seen.get(t) !== 1) fail(`type ${t}: ${seen.get(t) || 0} samples from ev_samples, want 1`);
for (const t of seen.keys()) if (!types.includes(t)) fail(`type ${t}: printed by ev_samples but not in envelope.v1.json`);
for (const f of schemaFiles) if (!usedSchemas.has(f)) fail(`${f}: no event type uses this schema`);

// 2 and 3. Both sides on every line.
const good = [...samples, ...readJsonl(args.good)];
const bad = readJsonl(args.bad);
const verdicts = cVerdicts([...good, ...bad].map((s) => s.line));
good.forEach((s, i) => {
  const why = ajvReject(s.line);
  if (why) fail(`${s.name}: ajv rejects a good record: ${why}`);
  if (verdicts[i] !== 'ok') fail(`${s.name}: C rejects a good record: ${verdicts[i]}`);
});
bad.forEach((s, i) => {
  const v = verdicts[good.length + i];
  if (!ajvReject(s.line)) fail(`${s.name}: ajv accepts a bad record`);
  if (!v.startsWith('err ')) fail(`${s.name}: C accepts a bad record`);
});

if (failures.length) {
  console.error(`contract_schemas: ${failures.length} failure(s)`);
  for (const f of failures) console.error(`  ${f}`);
  process.exit(1);
}
console.log(`contract_schemas: ok: ${samples.length} samples, ${good.length - samples.length} good and ${bad.length} bad records agree between ajv and the C codecs`);
