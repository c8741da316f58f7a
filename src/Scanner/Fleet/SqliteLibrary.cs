using Microsoft.Data.Sqlite;

namespace DriverAudit.Scanner.Fleet;

/// <summary>Where the result cache and the fleet database get their SQLite connections.</summary>
internal static class SqliteLibrary
{
    /// <summary>
    /// A connection for <paramref name="connectionString"/>. The native SQLite library is loaded by the first
    /// connection's type initialiser; when it is missing (a Native AOT build copied without the libe_sqlite3 file
    /// its publish writes beside it) that fails as a TypeInitializationException, reported here as a sentence.
    /// </summary>
    public static SqliteConnection Connect(string connectionString)
    {
        try
        {
            return new SqliteConnection(connectionString);
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or EntryPointNotFoundException)
        {
            throw new InvalidDataException(
                "the SQLite library (e_sqlite3) cannot be loaded; keep the libe_sqlite3 file that `dotnet publish` writes "
                + "beside driveraudit, or use the single-file build, which carries it inside.", e);
        }
    }
}
