import neostandard from 'neostandard'

export default neostandard({
  ts: true,
  ignores: ['dist/**', '.build/**', '.lowest/**', 'coverage/**', '.tap/**', 'node_modules/**']
})
