import java.sql.*;
import java.util.*;
import java.util.concurrent.*;

/* JdbcPrepared HOST PORT DB USER PASSWORD TABLE WORKERS ROUNDS
 * pgjdbc with its defaults (prepareThreshold=5: server-side named statements S_n from the fifth
 * execution on), one connection per worker thread. Each round: a parametrised query, a
 * transaction that inserts and counts (every third rolled back), a PreparedStatement created
 * once and reused across transactions. Prints "ok N" with the number of rounds done. */
public class JdbcPrepared {
    static int round(Connection c, String table, int w, int i, int committed, PreparedStatement reused) throws SQLException {
        try (PreparedStatement q = c.prepareStatement("select ?::int * 1000 + ?::int")) {
            q.setInt(1, w);
            q.setInt(2, i);
            try (ResultSet rs = q.executeQuery()) {
                rs.next();
                if (rs.getInt(1) != w * 1000 + i) throw new RuntimeException("value " + rs.getInt(1));
            }
        }
        c.setAutoCommit(false);
        try (PreparedStatement ins = c.prepareStatement("insert into " + table + " values (?, ?)");
             PreparedStatement cnt = c.prepareStatement("select count(*) from " + table + " where w = ?")) {
            ins.setInt(1, w);
            ins.setInt(2, i);
            ins.executeUpdate();
            cnt.setInt(1, w);
            try (ResultSet rs = cnt.executeQuery()) {
                rs.next();
                if (rs.getInt(1) != committed + 1) throw new RuntimeException("count " + rs.getInt(1) + " want " + (committed + 1));
            }
            reused.setInt(1, i);
            try (ResultSet rs = reused.executeQuery()) {
                rs.next();
                if (rs.getInt(1) != i + w) throw new RuntimeException("reused " + rs.getInt(1));
            }
        }
        if (i % 3 == 0) {
            c.rollback();
        } else {
            c.commit();
            committed++;
        }
        c.setAutoCommit(true);
        return committed;
    }

    public static void main(String[] a) throws Exception {
        String url = "jdbc:postgresql://" + a[0] + ":" + a[1] + "/" + a[2];
        Properties pr = new Properties();
        pr.setProperty("user", a[3]);
        pr.setProperty("password", a[4]);
        pr.setProperty("sslmode", "disable");
        pr.setProperty("connectTimeout", "10");
        pr.setProperty("socketTimeout", "60");
        String table = a[5];
        int workers = Integer.parseInt(a[6]), rounds = Integer.parseInt(a[7]);
        ExecutorService ex = Executors.newFixedThreadPool(workers);
        List<Future<Integer>> fs = new ArrayList<>();
        for (int w = 1; w <= workers; w++) {
            final int id = w;
            fs.add(ex.submit(() -> {
                try (Connection c = DriverManager.getConnection(url, pr);
                     PreparedStatement reused = c.prepareStatement("select ?::int + " + id)) {
                    int committed = 0;
                    for (int i = 1; i <= rounds; i++)
                        committed = round(c, table, id, i, committed, reused);
                    return rounds;
                }
            }));
        }
        int done = 0;
        for (Future<Integer> f : fs)
            done += f.get(120, TimeUnit.SECONDS);
        ex.shutdown();
        System.out.println("ok " + done);
    }
}
