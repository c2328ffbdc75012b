import neostandard from 'neostandard'

export default neostandard({
  ts: true,
  ignores: ['dist/**', '.build/**', 'coverage/**', '.tap/**', 'node_modules/**']
})
