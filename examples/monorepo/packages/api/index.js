console.log('api service')
