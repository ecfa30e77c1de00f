// Ink renders nothing until exit when CI is set (is-in-ci): unset it before ink is imported.
delete process.env['CI'];
delete process.env['CONTINUOUS_INTEGRATION'];
process.env['NO_COLOR'] = '1';
