#!/usr/bin/env node
// `cdk8s import k8s@1.27.0` downloads its schema from GitHub, which this project's machines cannot reach.
// The same definitions ship in the Go module k8s.io/kubernetes (api/openapi-spec/swagger.json), which the
// Go module proxy serves. This runs cdk8s-cli's own k8s importer on that file, after the two rewrites the
// cdk8s schema publisher applies (IntOrString and Quantity become string-or-number unions), and writes
// lib/imports/k8s.ts.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const K8S_VERSION = '1.27.0';
const repo = path.resolve(__dirname, '..');

const mod = JSON.parse(execFileSync('go', ['mod', 'download', '-json', `k8s.io/kubernetes@v${K8S_VERSION}`], { encoding: 'utf8' }));
const swagger = JSON.parse(fs.readFileSync(path.join(mod.Dir, 'api/openapi-spec/swagger.json'), 'utf8'));
const defs = swagger.definitions;
defs['io.k8s.apimachinery.pkg.util.intstr.IntOrString'] = {
  description: defs['io.k8s.apimachinery.pkg.util.intstr.IntOrString'].description,
  oneOf: [{ type: 'string' }, { type: 'integer' }],
};
defs['io.k8s.apimachinery.pkg.api.resource.Quantity'] = {
  description: defs['io.k8s.apimachinery.pkg.api.resource.Quantity'].description,
  oneOf: [{ type: 'string' }, { type: 'number' }],
};
const schemaText = JSON.stringify({ definitions: defs });

// cdk8s-cli exports no subpaths; its importer is loaded from the installed package directory.
const cliDir = path.join(repo, 'node_modules/cdk8s-cli');
const util = require(path.join(cliDir, 'lib/util'));
util.download = async () => schemaText;
const { importDispatch } = require(path.join(cliDir, 'lib/import/dispatch'));
const { Language } = require(path.join(cliDir, 'lib/import/base'));

importDispatch([{ source: `k8s@${K8S_VERSION}` }], {}, {
  outdir: path.join(repo, 'lib/imports'),
  targetLanguage: Language.TYPESCRIPT,
  save: false,
}).catch((err) => {
  console.error(`import-k8s: ${err.message}`);
  process.exit(1);
});
