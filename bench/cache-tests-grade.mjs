// cache-tests-grade.mjs SUITE_DIR RESULTS_JSON: grades the results of the
// http-tests/cache-tests CLI with the suite's own determineTestResult
// (dependencies honoured) and prints "N passed" (of the graded tests:
// required and optimal, not the informational "check" ones), then every
// test that did not pass with its verdict, id and name.
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { join } from 'node:path'

const [suiteDir, resultsPath] = process.argv.slice(2)
const load = p => import(pathToFileURL(join(suiteDir, p)).href)
const { default: suites } = await load('tests/index.mjs')
const { determineTestResult, resultTypes } = await load('test-engine/lib/results.mjs')
const results = JSON.parse(readFileSync(resultsPath, 'utf8'))

const name = Object.fromEntries(Object.entries(resultTypes).map(([k, v]) => [v[2], k]))
let passed = 0
let graded = 0
let checksYes = 0
let checks = 0
const misses = []
for (const suite of suites) {
  for (const test of suite.tests) {
    if (test.browser_only === true) continue // not run against a proxy
    const r = determineTestResult(suites, test.id, results, true)
    if (test.kind === 'check') {
      checks++
      if (r === resultTypes.yes) checksYes++
      continue
    }
    graded++
    if (r === resultTypes.pass) {
      passed++
    } else {
      const detail = Array.isArray(results[test.id]) ? ` (${results[test.id][1]})` : ''
      misses.push(`${name[r[2]] || r[2]}\t${test.id}\t${test.name}${detail}`)
    }
  }
}
console.log(`${passed} passed of ${graded} graded tests (checks: ${checksYes} of ${checks} yes)`)
if (misses.length > 0) {
  console.log('not passed:')
  for (const m of misses) console.log('  ' + m)
}
