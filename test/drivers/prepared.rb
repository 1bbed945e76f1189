# ruby prepared.rb HOST PORT DB USER PASSWORD TABLE WORKERS ROUNDS
# ruby-pg with server-side prepares (conn.prepare / exec_prepared), one connection per worker
# thread. Each round: a parametrised query, a transaction that inserts and counts (every third
# rolled back), a statement prepared once and reused across transactions; every value checked.
# Prints "ok N" with the rounds done.
require 'pg'
require 'timeout'

host, port, db, user, pw, table, workers, rounds = ARGV
workers = workers.to_i
rounds = rounds.to_i

def check(got, want, what)
  raise "#{what}: got #{got.inspect}, want #{want.inspect}" unless got.to_s == want.to_s
end

threads = (1..workers).map do |w|
  Thread.new do
    c = PG.connect(host: host, port: port.to_i, dbname: db, user: user, password: pw, sslmode: 'disable')
    begin
      c.prepare('calc', 'select $1::int * 1000 + $2::int')
      c.prepare('ins', "insert into #{table} values ($1, $2)")
      c.prepare('cnt', "select count(*) from #{table} where w = $1")
      c.prepare('reused', "select $1::int + #{w}")
      committed = 0
      (1..rounds).each do |i|
        check(c.exec_prepared('calc', [w, i]).getvalue(0, 0), w * 1000 + i, 'calc')
        c.exec('begin')
        c.exec_prepared('ins', [w, i])
        check(c.exec_prepared('cnt', [w]).getvalue(0, 0), committed + 1, 'count in transaction')
        check(c.exec_prepared('reused', [i]).getvalue(0, 0), i + w, 'reused')
        if i % 3 == 0
          c.exec('rollback')
        else
          c.exec('commit')
          committed += 1
        end
        check(c.exec_prepared('cnt', [w]).getvalue(0, 0), committed, 'count after')
      end
    ensure
      c.close
    end
  end
end
Timeout.timeout(120) { threads.each(&:join) }
puts "ok #{workers * rounds}"
