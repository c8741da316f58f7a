namespace DriverAudit.Scanner.Images;

/// <summary>How offsets into an <see cref="IImageSource"/> relate to RVAs.</summary>
internal enum ImageLayout
{
    /// <summary>Bytes as on disk: an RVA is translated to a file offset through the section table.</summary>
    File,
    /// <summary>Bytes as mapped by the loader: offset == RVA (offset from DllBase); pages may be missing.</summary>
    Loaded,
}

/// <summary>
/// The one seam between where bytes live (a file, a crash dump) and the PE parser.
/// Implementations never throw for out-of-range reads: they return fewer bytes.
/// </summary>
internal interface IImageSource : IDisposable
{
    ImageLayout Layout { get; }

    /// <summary>File length (file layout) or SizeOfImage (loaded layout).</summary>
    long Length { get; }

    /// <summary>
    /// Copies bytes at <paramref name="position"/> into <paramref name="destination"/> and returns how many
    /// were copied. Copying stops early at the end of the source or at the first missing page.
    /// </summary>
    int Read(long position, Span<byte> destination);

    /// <summary>True when every byte of [position, position+length) can be read.</summary>
    bool IsAvailable(long position, long length);

    /// <summary>Where the bytes came from, for reports.</summary>
    ImageOrigin Origin { get; }
}

/// <summary>Provenance of an image: a file, or a module inside a crash dump.</summary>
/// <param name="Path">Full path of the file (the dump file for dump modules).</param>
/// <param name="ModuleName">Dump only: the module's base name (e.g. "{GUID}.sys").</param>
/// <param name="ModuleBase">Dump only: DllBase.</param>
/// <param name="ModuleFullPath">Dump only: FullDllName as the kernel recorded it.</param>
internal sealed record ImageOrigin(string Path, string? ModuleName = null, ulong? ModuleBase = null, string? ModuleFullPath = null)
{
    public bool IsDumpModule => ModuleName is not null;
}
