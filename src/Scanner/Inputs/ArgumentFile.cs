using System.Text;

namespace DriverAudit.Scanner.Inputs;

/// <summary>A file named by an option could not be read safely; the message is complete and names the file. <see cref="Reason"/> is the same without the file, for messages that already name it (file:line:col).</summary>
internal sealed class ArgumentFileException(string path, string what, string reason, Exception? inner = null)
    : Exception($"{what} '{path}' {reason}.", inner)
{
    public string Path { get; } = path;
    public string Reason { get; } = reason;
}

/// <summary>
/// The one way DriverAudit reads a file named by an option (rules, config, hash lists, baselines): only a
/// regular file (a FIFO would block, a device never end, a directory is a mistake), and at most a stated
/// number of bytes, so a wrong argument is a clear error (exit 2) instead of a hang or an out-of-memory crash.
/// </summary>
internal static class ArgumentFile
{
    /// <summary>Rule files (each) and config files.</summary>
    public const long MaxRuleFileBytes = 16L << 20;
    public const long MaxConfigBytes = 16L << 20;
    /// <summary>Hash lists (plain lists, LOLDrivers drivers.csv / drivers.json).</summary>
    public const long MaxHashListBytes = 64L << 20;
    /// <summary>SARIF baselines.</summary>
    public const long MaxBaselineBytes = 256L << 20;

    /// <summary>Null when <paramref name="path"/> is a regular file, else why it cannot be read ("is a FIFO (named pipe)").</summary>
    public static string? Refusal(string path)
    {
        var kind = FileKinds.Of(path);
        return kind switch
        {
            FileKind.Regular => null,
            FileKind.Missing => "does not exist",
            _ => $"is {FileKinds.Describe(kind)}, not a regular file",
        };
    }

    /// <summary>All the bytes of a regular file of at most <paramref name="limit"/> bytes. <paramref name="what"/>: "rule file".</summary>
    public static byte[] ReadAllBytes(string path, long limit, string what)
    {
        if (Refusal(path) is { } why) throw new ArgumentFileException(path, what, why);
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.SequentialScan);
            // The length can change under us (a file being written): read at most limit + 1 bytes whatever it says.
            if (stream.Length > limit) throw TooLarge(path, what, limit, stream.Length);
            var buffer = new byte[Math.Min(stream.Length, limit) + 1];
            var total = 0;
            while (true)
            {
                if (total == buffer.Length)
                {
                    if (buffer.Length > limit) throw TooLarge(path, what, limit, null);
                    Array.Resize(ref buffer, (int)Math.Min(limit + 1, Math.Max(4096L, 2L * buffer.Length)));
                }
                var n = stream.Read(buffer, total, buffer.Length - total);
                if (n == 0) break;
                total += n;
            }
            return total == buffer.Length ? buffer : buffer[..total];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentFileException(path, what, "cannot be read: " + e.Message.TrimEnd('.'), e);
        }
    }

    /// <summary>The text of a regular file (UTF-8, or UTF-16/32 with a byte order mark, like File.ReadAllText).</summary>
    public static string ReadAllText(string path, long limit, string what)
    {
        var bytes = ReadAllBytes(path, limit, what);
        using var reader = new StreamReader(new MemoryStream(bytes, writable: false), Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        return reader.ReadToEnd();
    }

    private static ArgumentFileException TooLarge(string path, string what, long limit, long? length)
    {
        var most = limit >= 1 << 20 ? $"{limit:N0} bytes ({limit >> 20} MiB)" : $"{limit:N0} bytes";
        return new(path, what, length is { } l ? $"is {l:N0} bytes; at most {most} are read" : $"is larger than {most}, the most that is read");
    }
}
