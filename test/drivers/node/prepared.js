// node prepared.js pg|postgres|postgres-pipeline HOST PORT DB USER PASSWORD TABLE WORKERS ROUNDS
// node-postgres with named queries ({name, text}) and postgres.js with its default prepare: true,
// one connection per worker, all workers at once. Each round: a parametrised query, a transaction
// that inserts and counts (every third rolled back), a statement reused across transactions;
// every value checked. Prints "ok N" with the number of rounds done.
'use strict'
const [lib, host, port, database, user, password, table, workersArg, roundsArg] = process.argv.slice(2)
const workers = Number(workersArg)
const rounds = Number(roundsArg)

function check(got, want, what) {
  if (String(got) !== String(want))
    throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`)
}

async function nodePg(w) {
  const { Client } = require('pg')
  const c = new Client({ host, port: Number(port), database, user, password })
  await c.connect()
  try {
    let committed = 0
    for (let i = 1; i <= rounds; i++) {
      const r = await c.query({ name: 'calc', text: 'select $1::int * 1000 + $2::int as v', values: [w, i] })
      check(r.rows[0].v, w * 1000 + i, 'calc')
      await c.query('begin')
      await c.query({ name: 'ins', text: `insert into ${table} values ($1, $2)`, values: [w, i] })
      const n = await c.query({ name: 'cnt', text: `select count(*)::int as n from ${table} where w = $1`, values: [w] })
      check(n.rows[0].n, committed + 1, 'count in transaction')
      const u = await c.query({ name: 'reused', text: `select $1::int + ${w} as v`, values: [i] })
      check(u.rows[0].v, i + w, 'reused')
      if (i % 3 === 0) {
        await c.query('rollback')
      } else {
        await c.query('commit')
        committed++
      }
      const after = await c.query({ name: 'cnt', text: `select count(*)::int as n from ${table} where w = $1`, values: [w] })
      check(after.rows[0].n, committed, 'count after')
    }
  } finally {
    await c.end()
  }
}

async function postgresJs(w) {
  const postgres = require('postgres')
  const sql = postgres({ host, port: Number(port), database, username: user, password, max: 1,
                         connect_timeout: 10, idle_timeout: 0, onnotice: () => {} })
  const t = sql(table)
  try {
    let committed = 0
    for (let i = 1; i <= rounds; i++) {
      const r = await sql`select ${w}::int * 1000 + ${i}::int as v, ${'x' + i}::text as s`
      check(r.length, 1, 'rows')
      check(r[0].v, w * 1000 + i, 'calc')
      check(r[0].s, 'x' + i, 'text column')
      let rolled = false
      try {
        await sql.begin(async tx => {
          await tx`insert into ${t} values (${w}, ${i})`
          const n = await tx`select count(*)::int as n from ${t} where w = ${w}`
          check(n[0].n, committed + 1, 'count in transaction')
          const u = await tx`select ${i}::int + ${w}::int as v`
          check(u[0].v, i + w, 'reused')
          if (i % 3 === 0) throw new Error('roll back')
        })
      } catch (e) {
        if (e.message !== 'roll back') throw e
        rolled = true
      }
      if (!rolled) committed++
      const after = await sql`select count(*)::int as n from ${t} where w = ${w}`
      check(after[0].n, committed, 'count after')
    }
  } finally {
    await sql.end({ timeout: 5 })
  }
}

// Several queries in flight on one connection (postgres.js pipelines them), with and
// without parameters. This is the pattern that once gave a client another query's row: when a
// prepared statement is missing on the server (26000), postgres.js re-sends every failed query at
// once, and a retried query with parameters (Parse, Describe, Flush, then Bind once the
// ParameterDescription arrives) gets its Bind queued behind the other retries, so it takes
// their RowDescription and DataRow as its own. The pooler must never let a statement the client
// prepared go missing.
async function postgresPipeline(w) {
  const postgres = require('postgres')
  const sql = postgres({ host, port: Number(port), database, username: user, password, max: 1,
                         connect_timeout: 10, idle_timeout: 0, onnotice: () => {} })
  try {
    for (let i = 1; i <= rounds; i++) {
      const [a, b, c] = await Promise.all([
        sql`select ${i}::int as v, ${'w' + w}::text as s`,
        sql`select 'k'::text as k, ${sql.unsafe(String(w))} as n`,
        sql`select ${w}::int + ${i}::int as t`,
      ])
      check(JSON.stringify(a), JSON.stringify([{ v: i, s: 'w' + w }]), 'first query')
      check(JSON.stringify(b), JSON.stringify([{ k: 'k', n: w }]), 'second query')
      check(JSON.stringify(c), JSON.stringify([{ t: w + i }]), 'third query')
    }
  } finally {
    await sql.end({ timeout: 5 })
  }
}

async function main() {
  const fn = lib === 'pg' ? nodePg : lib === 'postgres' ? postgresJs : postgresPipeline
  const ws = []
  for (let w = 1; w <= workers; w++) ws.push(fn(w))
  await Promise.all(ws)
  console.log('ok ' + workers * rounds)
}

const timer = setTimeout(() => { console.error('timed out'); process.exit(3) }, 60000)
main().then(() => { clearTimeout(timer) }, e => { console.error(e); process.exit(1) })
