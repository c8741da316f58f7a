using Microsoft.Win32.SafeHandles;

namespace DriverAudit.Scanner.Images;

/// <summary>A file on disk in file layout. Positional reads, no stream buffer: only the bytes asked for are read.</summary>
internal sealed class FileImageSource : IImageSource
{
    private readonly SafeFileHandle _handle;

    private FileImageSource(SafeFileHandle handle, long length, string path)
    {
        _handle = handle;
        Length = length;
        Origin = new ImageOrigin(path);
    }

    /// <summary>Opens <paramref name="path"/> for reading; IO exceptions propagate to the caller, which reports them.</summary>
    public static FileImageSource Open(string path)
    {
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, FileOptions.RandomAccess);
        try
        {
            return new FileImageSource(handle, RandomAccess.GetLength(handle), path);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public ImageLayout Layout => ImageLayout.File;
    public long Length { get; }
    public ImageOrigin Origin { get; }

    public int Read(long position, Span<byte> destination)
    {
        if (position < 0 || position >= Length || destination.IsEmpty) return 0;
        var want = (int)Math.Min(destination.Length, Length - position);
        var total = 0;
        while (total < want)
        {
            var n = RandomAccess.Read(_handle, destination.Slice(total, want - total), position + total);
            if (n <= 0) break; // file shrank under us: report what we have
            total += n;
        }
        return total;
    }

    public bool IsAvailable(long position, long length) =>
        position >= 0 && length >= 0 && position <= Length && length <= Length - position;

    public void Dispose() => _handle.Dispose();
}
