using System.Runtime.InteropServices;

namespace DriverAudit.TestSupport;

/// <summary>Special files for hostile-input tests (FIFOs; .NET has no API to make one).</summary>
public static partial class UnixFiles
{
    public static string Fifo(string path)
    {
        if (MakeFifo(path, Convert.ToUInt32("600", 8)) != 0)
            throw new IOException($"mkfifo '{path}' failed: errno {Marshal.GetLastPInvokeError()}");
        return path;
    }

    [LibraryImport("libc", EntryPoint = "mkfifo", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int MakeFifo(string path, uint mode);

    /// <summary>
    /// A chain of <paramref name="depth"/> folders named <paramref name="name"/> under <paramref name="parent"/>/<paramref name="top"/>,
    /// with <paramref name="leaf"/> at the bottom. Built bottom-up by renames so no path handed to the system is
    /// longer than two components: the result may be far deeper than PATH_MAX.
    /// </summary>
    public static string DeepChain(string parent, string top, string name, int depth, string leaf)
    {
        var chain = Path.Combine(parent, "chain-0");
        Directory.CreateDirectory(chain);
        File.WriteAllBytes(Path.Combine(chain, leaf), [1]);
        for (var i = 1; i <= depth; i++)
        {
            var next = Path.Combine(parent, "chain-" + i);
            Directory.CreateDirectory(next);
            Directory.Move(chain, Path.Combine(next, name));
            chain = next;
        }
        var result = Path.Combine(parent, top);
        Directory.Move(chain, result);
        return result;
    }

    /// <summary>Deletes what <see cref="DeepChain"/> built, top-down by renames (Directory.Delete fails past PATH_MAX).</summary>
    public static void DeleteDeepChain(string parent, string top, string name)
    {
        var dir = Path.Combine(parent, top);
        for (var i = 0; Directory.Exists(Path.Combine(dir, name)); i++)
        {
            var next = Path.Combine(parent, "unwind-" + i);
            Directory.Move(Path.Combine(dir, name), next);
            Directory.Delete(dir, recursive: true);
            dir = next;
        }
        Directory.Delete(dir, recursive: true);
    }
}
